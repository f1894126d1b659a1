"""Air-gapped by default: the whole pipeline runs with every non-loopback connection
refused, in a fresh interpreter so import-time telemetry is caught too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

RUN_WITH_GUARD = """
import sys
import tests.airgap_guard
from pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_whole_pipeline_makes_no_network_call(tmp_path, corpus):
    log = tmp_path / "blocked.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "DO_NOT_TRACK"))}
    env["AIRGAP_LOG"] = str(log)
    completed = subprocess.run(
        [sys.executable, "-c", RUN_WITH_GUARD, "ingest", "--json",
         "--source", str(corpus), "--data-dir", str(tmp_path / "data")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    blocked = log.read_text() if log.exists() else ""
    assert blocked == "", f"network calls attempted:\n{blocked}"
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout)
    assert summary["documents"]["new"] == 8 and summary["upserted"] > 0


def test_guard_really_blocks_remote_addresses(tmp_path):
    """The guard itself must refuse a remote connection, or the test above proves nothing."""
    log = tmp_path / "blocked.log"
    probe = ("import socket, tests.airgap_guard\n"
             "try:\n    socket.create_connection(('192.0.2.1', 443), timeout=1)\n"
             "except OSError as e:\n    print(e)\n")
    completed = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                               env={**os.environ, "AIRGAP_LOG": str(log)}, timeout=60)
    assert "air-gap guard: blocked" in completed.stdout
    assert "192.0.2.1" in log.read_text()
