"""bench/peers.py end to end at a tiny size: every system in every scenario, stores checked, no network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# ragpipe-noscreen is ragpipe with two settings off: left out to keep the test near two minutes.
SYSTEMS = ("ragpipe", "langchain", "llamaindex", "floor")
SCENARIOS = ("full", "rerun", "change")


def table_rows(output: str) -> dict[tuple[str, str], dict[str, str]]:
    lines = [line for line in output.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)) for line in lines[2:]]
    return {(row["system"], row["scenario"]): row for row in rows}


def test_every_system_indexes_reruns_for_free_and_follows_changes_offline(tmp_path):
    guard = tmp_path / "guard"
    guard.mkdir()
    # Every child process refuses non-loopback connections and logs them: LlamaIndex's NLTK download included.
    (guard / "sitecustomize.py").write_text("import tests.airgap_guard\n")
    log = tmp_path / "blocked.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(REPO), str(guard))), "AIRGAP_LOG": str(log)}
    done = subprocess.run(
        [sys.executable, "bench/peers.py", "--docs", "6", "--systems", *SYSTEMS, "--workdir", str(tmp_path / "work")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not log.exists(), log.read_text()

    rows = table_rows(done.stdout)
    assert set(rows) == {(system, scenario) for system in SYSTEMS for scenario in SCENARIOS}
    for row in rows.values():
        assert float(row["wall s"]) > 0 and float(row["peak RSS MB"]) > 0
    for system in SYSTEMS:
        assert int(rows[system, "full"]["tokens embedded"].replace(",", "")) > 0
        assert rows[system, "rerun"]["tokens embedded"] == "0"
        assert int(rows[system, "change"]["tokens embedded"].replace(",", "")) > 0
    # The floor encodes exactly what ragpipe embedded.
    for scenario in SCENARIOS:
        assert rows["floor", scenario]["tokens embedded"] == rows["ragpipe", scenario]["tokens embedded"]
    # Six documents, then one rewritten and another deleted: five left in every store.
    for system in ("ragpipe", "langchain", "llamaindex"):
        assert rows[system, "full"]["documents stored"] == "6/6"
        assert rows[system, "rerun"]["documents stored"] == "6/6"
        assert rows[system, "change"]["documents stored"] == "5/5"
    assert rows["ragpipe", "full"]["× floor"].endswith("×") and rows["ragpipe", "full"]["× best peer"].endswith("×")
