"""``ragpipe eval --gate`` on the shipped sample golden set (retrieval tier), as CI runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

RAGPIPE = Path(sys.executable).with_name("ragpipe")


def ragpipe(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGPIPE_")}
    return subprocess.run([str(RAGPIPE), *args], capture_output=True, text=True, env=env, timeout=1200)


def test_eval_gate_passes_on_the_sample_set_and_promotes(tmp_path):
    run = ragpipe("eval", "--gate", "--json", "--data-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    evaluation = report["evaluation"]
    assert evaluation["golden_set"] == "sample" and evaluation["questions"] >= 50
    assert evaluation["gate_passed"] and not evaluation["generation_tier"]
    assert evaluation["aggregates"]["non_llm_context_recall"] >= 0.75
    assert report["promotion"]["collection"] == evaluation["collection"]

    status = json.loads(ragpipe("status", "--json", "--data-dir", str(tmp_path)).stdout)
    assert status["alias"] == {"name": "knowledge", "target": evaluation["collection"]}
    assert status["versions_kept"] == [evaluation["collection"]]


def test_eval_gate_fails_readably_on_an_absurd_chunk_size(tmp_path):
    run = ragpipe("eval", "--gate", "--chunk-size", "16", "--chunk-overlap", "0", "--data-dir", str(tmp_path))
    assert run.returncode == 1
    assert "gate: FAILED" in run.stdout
    failure = next(line for line in run.stdout.splitlines() if "[FAIL]" in line)
    assert failure.startswith("  [FAIL] retrieval_floor: retrieval context recall 0.")
    assert "< floor 0.75" in failure and "chunk size/overlap" in failure
    assert "not promoted: the gate failed" in run.stdout
    status = json.loads(ragpipe("status", "--json", "--data-dir", str(tmp_path)).stdout)
    assert status["alias"]["target"] is None
