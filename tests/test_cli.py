"""The ragpipe console script, as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"


def ragpipe(*args: str) -> subprocess.CompletedProcess:
    executable = BIN / "ragpipe" if (BIN / "ragpipe").exists() else "ragpipe"
    return subprocess.run([str(executable), *args], capture_output=True, text=True, timeout=600)


def test_ingest_json_then_status(tmp_path, corpus):
    data = str(tmp_path / "data")
    first = ragpipe("ingest", "--source", str(corpus), "--data-dir", data, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout)
    for key in ("documents", "chunks", "embedded", "upserted", "deleted_points", "index_version", "collection"):
        assert key in summary
    assert set(summary["documents"]) >= {"new", "changed", "unchanged", "deleted", "quarantined", "failed"}

    status = ragpipe("status", "--data-dir", data, "--json")
    assert status.returncode == 0, status.stderr[-2000:]
    report = json.loads(status.stdout)
    assert report["ledger"] == {summary["index_version"]: {"indexed": 8}}
    assert report["collections"] == {summary["collection"]: summary["points"]}


def test_human_summary_and_failing_exit_codes(tmp_path, corpus):
    data = str(tmp_path / "data")
    ok = ragpipe("ingest", "--source", str(corpus), "--data-dir", data)
    assert ok.returncode == 0
    assert "documents: new 8" in ok.stdout and "ragpipe ui" in ok.stdout

    missing = ragpipe("ingest", "--source", str(tmp_path / "nowhere"), "--data-dir", data)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr

    too_big = ragpipe("ingest", "--source", str(corpus), "--data-dir", data, "--chunk-size", "1000")
    assert too_big.returncode == 2
    assert "chunk_size_tokens=1000 exceeds the embedder's limit of 254 tokens" in too_big.stderr
