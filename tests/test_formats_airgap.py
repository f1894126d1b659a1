"""Every format parses with every non-loopback connection refused, in a fresh interpreter
whose environment has no telemetry opt-outs of its own: unstructured's spaCy model install
and its telemetry pings, and any other library's, must be switched off by ragpipe itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PARSE_EVERY_FORMAT_WITH_GUARD = """
import json, shutil
import tests.airgap_guard
from assets.ingestion.parsing import parse_document
from resources.ocr import TesseractOcr
from tests import format_fixtures as fx

ocr = TesseractOcr() if shutil.which("tesseract") else None
parsed = {}
for name, data in fx.every_format().items():
    try:
        parsed[name] = parse_document("file:///corpus/" + name, data, ocr=ocr).content_type
    except Exception as error:
        parsed[name] = "rejected: " + str(error)
print(json.dumps(parsed))
"""


def test_every_format_parses_without_network(tmp_path):
    from tests import format_fixtures as fx

    log = tmp_path / "blocked.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "TRANSFORMERS_", "DO_NOT_TRACK", "SCARF_", "UNSTRUCTURED_"))}
    env["AIRGAP_LOG"] = str(log)
    completed = subprocess.run([sys.executable, "-c", PARSE_EVERY_FORMAT_WITH_GUARD], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=600)
    blocked = log.read_text() if log.exists() else ""
    assert blocked == "", f"network calls attempted:\n{blocked}"
    assert completed.returncode == 0, completed.stderr[-3000:]
    parsed = json.loads(completed.stdout.strip().splitlines()[-1])
    assert set(parsed) == set(fx.every_format())
    failures = {name: result for name, result in parsed.items()
                if result.startswith("rejected") and "needs OCR" not in result}
    assert failures == {}
