"""Kill trials: SIGKILL a real ingest at a random moment, change the corpus, rerun, and count
what the index holds that the ledger does not account for (and the reverse).

    .venv/bin/python bench/kill_trials.py [--trials 14] [--seed 7] [--keep DIR]

Each trial: a seeded data directory gets a batch of new and edited documents; `ragpipe ingest`
runs in its own process group and is killed with SIGKILL at a random moment (0 to 0.5 s) after
a stage picked in turn starts, so every stage gets its share of kills (a delay over the whole
run would land most of them in start-up and screening). Then one document is deleted, one edited and one reverted to its
recorded content, the killed run is recorded as failed (as Dagster's run monitoring would),
and the ingest runs again. A trial converges when the collection's point ids equal the ids the
ledger accounts for and the rerun exited 0. Prints one JSON object; exits 1 on any trial
that did not converge.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter  # noqa: E402

from assets.ingestion.documents import point_id  # noqa: E402
from pipelines.definitions import build_resources  # noqa: E402
from pipelines.instance import ensure_dagster_home  # noqa: E402
from pipelines.settings import Settings  # noqa: E402
from tests.corpus import markdown_doc, prose, write_corpus  # noqa: E402

RAGPIPE = str(Path(sys.executable).with_name("ragpipe"))
STAGES = ("raw_documents", "clean_documents", "screened_documents", "chunks", "embeddings", "vector_index")
BULK_DOCUMENTS = 48  # new documents per trial: embedding and upserts take most of the run


def ingest(settings: Settings) -> subprocess.Popen:
    return subprocess.Popen(
        [RAGPIPE, "ingest", "--json", "--source", str(settings.source_dir), "--data-dir", str(settings.data_dir)],
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )


def drift(settings: Settings) -> tuple[int, int]:
    """(points the ledger does not account for, ledger points missing from the index)."""
    resources = build_resources(settings)
    store, ledger = resources["vector_store"], resources["ledger"]
    try:
        [version] = ledger.status_counts()
        rows = ledger.rows(version)
        expected = {point_id(r.source, r.indexed_doc_id, i) for r in rows.values() if r.indexed_doc_id
                    for i in range(r.chunk_count)}
        stored = store.point_ids(f"{settings.collection}__{version}")
        return len(stored - expected), len(expected - stored)
    finally:
        store.close()


def started_steps(instance: DagsterInstance) -> tuple[object | None, list[str]]:
    """The running ingest run (or None) and the steps it has started, in order."""
    runs = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    if not runs:
        return None, []
    records = instance.get_records_for_run(runs[0].run_id, of_type=DagsterEventType.STEP_START).records
    return runs[0], [record.event_log_entry.step_key for record in records]


def kill_in(settings: Settings, run: subprocess.Popen, stage: str, rng: random.Random) -> str:
    """SIGKILL ``run`` at a random moment after ``stage`` starts; record the run as failed (as
    Dagster's run monitoring would) and return the step it was in, or why it was not killed."""
    ensure_dagster_home(settings.dagster_home)
    with DagsterInstance.get() as instance:
        while run.poll() is None and stage not in started_steps(instance)[1]:
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.5))
        if run.poll() is not None:
            return "(finished before the kill)"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        dagster_run, steps = started_steps(instance)
        if dagster_run is None:  # it recorded its end in the moment before the kill
            return "(finished before the kill)"
        instance.report_run_failed(dagster_run)
    return steps[-1]


def trial(number: int, rng: random.Random, root: Path) -> dict:
    corpus, data = root / f"corpus-{number}", root / f"data-{number}"
    write_corpus(corpus)
    settings = Settings(data_dir=data, source_dir=corpus)
    seed = ingest(settings)
    seed.communicate()
    recorded = (corpus / "procedure-1.md").read_bytes()
    (corpus / "procedure-1.md").write_text(markdown_doc(1) + "\n## Later\n\n" + prose(900 + number, 12) + "\n")
    for index in range(BULK_DOCUMENTS):
        (corpus / f"bulk-{index}.txt").write_text(prose(1000 * number + index, 10), encoding="utf-8")

    target = STAGES[number % len(STAGES)]
    stage = kill_in(settings, ingest(settings), target, rng)
    after_kill = drift(settings)

    (corpus / "procedure-1.md").write_bytes(recorded)  # reverted to its recorded content
    (corpus / "notes-3.txt").unlink()
    (corpus / "procedure-5.md").write_text(markdown_doc(500 + number), encoding="utf-8")
    rerun = ingest(settings)
    out, _ = rerun.communicate()
    summary = json.loads(out) if rerun.returncode in (0, 1) and out.strip() else {}
    orphans, missing = drift(settings)
    return {"trial": number, "kill_after_start_of": target, "killed_in": stage,
            "drift_after_kill": {"orphan_points": after_kill[0], "missing_points": after_kill[1]},
            "rerun_exit": rerun.returncode, "repaired": summary.get("repaired"),
            "embedded": summary.get("embedded"), "reused": summary.get("reused_vectors"),
            "orphan_points": orphans, "missing_points": missing,
            "converged": rerun.returncode == 0 and orphans == missing == 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the corpora and data directories here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="ragpipe-kill-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    try:
        results = [trial(number, rng, root) for number in range(args.trials)]
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report = {
        "trials": len(results), "converged": sum(r["converged"] for r in results),
        "killed_in": dict(Counter(r["killed_in"] for r in results)),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["converged"] == report["trials"] else 1)


if __name__ == "__main__":
    main()
