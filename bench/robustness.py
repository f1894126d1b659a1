"""Robustness run: a folder of mixed files through the real ingest job; per-format counts.

    .venv/bin/python bench/robustness.py [--keep DIR]

Writes every supported format, the hostile files (zip bomb, truncated, encrypted, wrong
extension, audio, video, executables, …) and a copy of the sample corpus into one folder,
runs the ingest job on a fresh data directory, then checks that every file ended either
indexed with non-empty chunks or recorded in the ledger with a reason. Prints per-format
counts and every reason as one JSON object; exits 1 if any file is unaccounted for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.cli import run_ingest  # noqa: E402
from pipelines.settings import SAMPLE_CORPUS, Settings  # noqa: E402
from resources.ledger import Ledger  # noqa: E402
from tests import format_fixtures as fx  # noqa: E402


def write_folder(folder: Path) -> None:
    for group, files in (("formats", fx.every_format()), ("hostile", fx.hostile())):
        for name, data in files.items():
            (folder / group).mkdir(parents=True, exist_ok=True)
            (folder / group / name).write_bytes(data)
    if SAMPLE_CORPUS.is_dir():
        shutil.copytree(SAMPLE_CORPUS, folder / "sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="write the folder and data here instead of a temp dir")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ragpipe-robustness-"))
    source, data = root / "files", root / "data"
    write_folder(source)
    settings = Settings.from_env(data_dir=data, source_dir=source)
    summary = run_ingest(settings, log_level="WARNING")
    rows = Ledger(url=settings.ledger).rows(summary["index_version"])
    per_format: dict[str, Counter] = defaultdict(Counter)
    reasons, unaccounted = {}, []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        row = rows.get(path.as_uri())
        kind = path.suffix.lower() or "(none)"
        if row and row.status == "indexed" and row.chunk_count > 0:
            per_format[kind]["indexed"] += 1
        elif row and row.status in ("quarantined", "failed") and row.reason:
            per_format[kind][row.status] += 1
            reasons[str(path.relative_to(source))] = f"{row.status}: {row.reason}"
        else:
            unaccounted.append(str(path.relative_to(source)))
    print(json.dumps({
        "files": sum(sum(c.values()) for c in per_format.values()) + len(unaccounted),
        "run_success": summary["success"],
        "documents": summary["documents"],
        "per_format": {kind: dict(counts) for kind, counts in sorted(per_format.items())},
        "reasons": reasons,
        "unaccounted": unaccounted,
        "stage_seconds": summary["stage_seconds"],
    }, indent=2))
    if not args.keep:
        shutil.rmtree(root)
    sys.exit(1 if unaccounted else 0)


if __name__ == "__main__":
    main()
