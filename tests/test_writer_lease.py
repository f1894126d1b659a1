"""One writer per collection: the ledger's writer lease, on SQLite and PostgreSQL, and two
ingest runs started on one collection at once."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.types import LeaseHeld
from resources.ledger import Ledger, writer_leases
from tests.qdrant_server import qdrant_contract_server
from tests.test_cli import RAGPIPE


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("postgres_url")


def never_finished(run_id: str) -> bool:
    return False


def test_a_held_lease_refuses_another_run_naming_the_holder(ledger_url):
    ledger = Ledger(url=ledger_url)
    held = ledger.acquire_lease("knowledge__v1", "run-a", 0, never_finished)
    assert held.holder == "run-a"
    assert ledger.acquire_lease("knowledge__v1", "run-a", 0, never_finished) == held  # re-entrant
    assert ledger.acquire_lease("knowledge__v2", "run-b", 0, never_finished).holder == "run-b"  # per collection

    with pytest.raises(LeaseHeld) as refused:
        ledger.acquire_lease("knowledge__v1", "run-b", 0.5, never_finished)
    message = str(refused.value)
    assert "collection knowledge__v1 is being written by run run-a since " in message
    assert f"{held.acquired_at:%Y-%m-%d %H:%M:%S} UTC" in message and "RAGPIPE_WRITER_WAIT" in message

    ledger.release_lease("knowledge__v1", "run-b")  # not the holder: nothing happens
    with pytest.raises(LeaseHeld):
        ledger.acquire_lease("knowledge__v1", "run-b", 0, never_finished)
    ledger.release_lease("knowledge__v1", "run-a")
    assert ledger.acquire_lease("knowledge__v1", "run-b", 0, never_finished).holder == "run-b"


def test_a_dead_holder_loses_the_lease(ledger_url):
    short = Ledger(url=ledger_url, lease_ttl_s=0.5)
    short.acquire_lease("knowledge__v1", "killed-run", 0, never_finished)  # no heartbeat follows
    with pytest.raises(LeaseHeld):
        short.acquire_lease("knowledge__v1", "next-run", 0, never_finished)
    assert short.acquire_lease("knowledge__v1", "next-run", 5, never_finished).holder == "next-run"

    # A holder Dagster knows has finished (a failed run) is replaced without waiting out its lease.
    ledger = Ledger(url=ledger_url)
    ledger.acquire_lease("knowledge__v2", "failed-run", 0, never_finished)
    assert ledger.acquire_lease("knowledge__v2", "new-run", 0, lambda run: run == "failed-run").holder == "new-run"


def test_a_running_holder_keeps_its_lease_by_heartbeat(ledger_url):
    """The ledger resource renews its run's lease while the run's steps execute; once the
    run is over (here without releasing), the lease lapses after its time to live."""
    from dagster import asset, materialize

    ttl = 1.5  # heartbeats every 0.5 s: room for a loaded machine to run one late
    other = Ledger(url=ledger_url, lease_ttl_s=ttl)

    @asset
    def long_write(context, ledger: Ledger) -> None:
        ledger.acquire_lease("knowledge__v1", context.run_id, 0, never_finished)
        time.sleep(4 * ttl)  # several lifetimes of an unrenewed lease
        with pytest.raises(LeaseHeld):
            other.acquire_lease("knowledge__v1", "other-run", 0, never_finished)

    assert materialize([long_write], resources={"ledger": Ledger(url=ledger_url, lease_ttl_s=ttl)}).success
    assert other.acquire_lease("knowledge__v1", "other-run", 3, never_finished).holder == "other-run"


def lease_holder(ledger_url: str) -> str | None:
    engine = Ledger(url=ledger_url).engine()
    try:
        with engine.connect() as connection:
            return connection.execute(sa.select(writer_leases.c.holder)).scalar()
    finally:
        engine.dispose()


def start_ingest(corpus: Path, data: Path, env: dict[str, str]) -> subprocess.Popen:
    command = [RAGPIPE, "ingest", "--source", str(corpus), "--data-dir", str(data), "--json"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def finish(process: subprocess.Popen) -> tuple[int, dict | None, str]:
    stdout, stderr = process.communicate(timeout=600)
    return process.returncode, json.loads(stdout) if stdout.strip() else None, stderr


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")  # see test_qdrant_server_mode
@pytest.mark.parametrize("backend", ["sqlite-local", "postgres-server"])
def test_two_ingest_runs_at_once_one_refuses_one_waits_index_as_after_one(backend, tmp_path, corpus, index_state,
                                                                            request):
    """Run A takes the lease; B (RAGPIPE_WRITER_WAIT=0) refuses at once with the holder's name;
    C waits for A and then finds everything unchanged. SQLite: one data directory, Qdrant local
    mode. Postgres: separate data directories (separate Dagster instances) sharing a Postgres
    ledger and a Qdrant server (the contract server: no Qdrant server can run here)."""
    from pipelines.settings import Settings

    with qdrant_contract_server() as (qdrant_url, _):
        if backend == "sqlite-local":
            env, dirs = {}, [tmp_path / "data"] * 3
            ledger_url = f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite'}"
        else:
            ledger_url = request.getfixturevalue("postgres_url")
            env = {"RAGPIPE_LEDGER_URL": ledger_url, "RAGPIPE_QDRANT_URL": qdrant_url}
            dirs = [tmp_path / name for name in ("a", "b", "c")]
        first = start_ingest(corpus, dirs[0], env)
        deadline = time.monotonic() + 120
        while lease_holder(ledger_url) is None and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        holder = lease_holder(ledger_url)
        assert holder is not None, first.communicate()[1][-2000:]
        refused = start_ingest(corpus, dirs[1], {**env, "RAGPIPE_WRITER_WAIT": "0"})
        waiting = start_ingest(corpus, dirs[2], {**env, "RAGPIPE_WRITER_WAIT": "600"})

        code_a, summary_a, stderr_a = finish(first)
        code_b, summary_b, stderr_b = finish(refused)
        code_c, summary_c, stderr_c = finish(waiting)
        assert code_a == 0, stderr_a[-3000:]
        assert summary_a["run_id"] == holder and summary_a["documents"]["new"] == 8

        assert code_b == 1 and not summary_b["success"]
        assert f"collection {summary_a['collection']} is being written by run {holder} since" in stderr_b
        assert "storage folder" not in stderr_b  # refused by the lease, not by Qdrant's file lock
        assert summary_b["documents"]["new"] == 0 and summary_b["upserted"] == 0

        assert code_c == 0, stderr_c[-3000:]
        assert summary_c["documents"]["unchanged"] == 8 and summary_c["embedded"] == summary_c["upserted"] == 0

        settings = Settings(data_dir=dirs[0], source_dir=corpus, ledger_url=env.get("RAGPIPE_LEDGER_URL", ""),
                            qdrant_url=env.get("RAGPIPE_QDRANT_URL", ""))
        ids, expected, rows = index_state(settings, summary_a["index_version"])
        assert ids == expected and len(ids) == summary_a["points"] == summary_c["points"]
        assert {row.status for row in rows.values()} == {"indexed"} and len(rows) == 8
        assert lease_holder(ledger_url) is None  # released by the last writer
