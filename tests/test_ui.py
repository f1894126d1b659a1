"""The Dagster UI, as an operator opens it with `ragpipe ui`: the six ingestion assets wired
in order with their descriptions, and the sensors and schedules on the Automation page
(stopped, in the local profile), rendered in headless Chromium (Debian's package)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_definitions import STAGES

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dagster_ui(tmp_path, corpus):
    port = free_port()
    ragpipe = Path(sys.executable).with_name("ragpipe")
    env = {**os.environ, "RAGPIPE_SOURCE_DIR": str(corpus)}
    server = subprocess.Popen([str(ragpipe), "ui", "--data-dir", str(tmp_path / "data"), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                assert server.poll() is None, "ragpipe ui exited"
                assert time.monotonic() < deadline, "UI did not come up in 180 s"
                time.sleep(1)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["data"]


def test_ui_shows_the_ingestion_assets_in_order_and_the_automation(dagster_ui, tmp_path):
    nodes = graphql(dagster_ui, "{ assetNodes { assetKey { path } description groupName "
                                "dependencyKeys { path } } }")["assetNodes"]
    by_name = {node["assetKey"]["path"][-1]: node for node in nodes}
    for upstream, name in zip([None, *STAGES], STAGES):
        assert by_name[name]["groupName"] == "ingestion" and by_name[name]["description"]
        assert [d["path"][-1] for d in by_name[name]["dependencyKeys"]] == ([upstream] if upstream else [])

    selector = '(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "ragpipe"})'
    automation = graphql(dagster_ui, f"{{ sensorsOrError{selector} {{ ... on Sensors {{ results {{ name "
                                     f"sensorState {{ status }} }} }} }} schedulesOrError{selector} {{ "
                                     f"... on Schedules {{ results {{ name cronSchedule scheduleState {{ status }} }} }} }} }}")
    sensors, schedules = automation["sensorsOrError"]["results"], automation["schedulesOrError"]["results"]
    assert {s["name"]: s["sensorState"]["status"] for s in sensors} == {"folder_watcher": "STOPPED"}
    assert [(s["name"], s["cronSchedule"], s["scheduleState"]["status"]) for s in schedules] == [
        ("reconcile_schedule", "0 2 * * *", "STOPPED")]

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium not installed (.ci/run installs it)")
    # the group's own page: with more than one group, /asset-groups/<group> redirects to the
    # global lineage, which shows each group collapsed
    rendered = render(chromium, tmp_path, f"{dagster_ui}/locations/ragpipe/asset-groups/ingestion")
    for name in STAGES:
        assert name in rendered
    automation_page = render(chromium, tmp_path, f"{dagster_ui}/automation")
    assert "folder_watcher" in automation_page and "reconcile_schedule" in automation_page


def render(chromium: str, tmp_path: Path, url: str) -> str:
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=20000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=180,
    ).stdout
