"""The ragpipe console script, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
RAGPIPE = str(BIN / "ragpipe") if (BIN / "ragpipe").exists() else "ragpipe"


def ragpipe(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, RAGPIPE, *args], check=False, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


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


@pytest.mark.parametrize(("variable", "value", "command", "message"), [
    ("RAGPIPE_CHUNK_SIZE", "abc", "ingest", "RAGPIPE_CHUNK_SIZE='abc' is not a valid int"),
    ("RAGPIPE_ALLOW_EMPTY_SOURCE", "maybe", "ingest", "RAGPIPE_ALLOW_EMPTY_SOURCE='maybe' is not a valid bool"),
    ("RAGPIPE_PROFILE", "prod", "eval", "RAGPIPE_PROFILE='prod' must be one of local, production"),
    ("RAGPIPE_RETRIEVER", "bm25", "eval", "RAGPIPE_RETRIEVER='bm25' must be one of dense, hybrid"),
    ("RAGPIPE_EMBEDDER_PATH", "{tmp}/no-model", "ingest",
     "RAGPIPE_EMBEDDER_PATH: no sentence-transformers model at {tmp}/no-model"),
])
def test_invalid_settings_exit_2_naming_the_setting(tmp_path, corpus, variable, value, command, message):
    completed = ragpipe(command, "--data-dir", str(tmp_path / "data"),
                        env={variable: value.format(tmp=tmp_path)})
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert message.format(tmp=tmp_path) in completed.stderr
    assert "Traceback" not in completed.stderr


def test_unusable_data_directory_exits_2_naming_the_path(tmp_path, corpus):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    uncreatable = ragpipe("ingest", "--source", str(corpus), "--data-dir", str(blocker / "data"))
    assert uncreatable.returncode == 2, uncreatable.stderr[-2000:]
    assert f"data directory {blocker / 'data'} (RAGPIPE_DATA_DIR or --data-dir) cannot be created" in uncreatable.stderr

    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    # root writes anywhere: drop its capabilities so the permission bits apply, as to any user.
    as_user = ("setpriv", "--bounding-set=-all", "--inh-caps=-all") if os.geteuid() == 0 else ()
    refused = ragpipe("ingest", "--source", str(corpus), "--data-dir", str(read_only), prefix=as_user)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert f"data directory {read_only} (RAGPIPE_DATA_DIR or --data-dir) is not writable" in refused.stderr
