"""``ragpipe eval --gate`` on the shipped sample golden set (retrieval tier), as CI runs it."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.golden_fixture import write_golden_set
from tests.openai_server import ChatServer
from tests.test_airgap import REPO, RUN_WITH_GUARD

RAGPIPE = Path(sys.executable).with_name("ragpipe")


def ragpipe(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGPIPE_")}
    return subprocess.run([str(RAGPIPE), *args], capture_output=True, text=True, env=env, timeout=1200)


def test_eval_gate_passes_on_the_sample_set_and_promotes_within_its_namespace(tmp_path):
    run = ragpipe("eval", "--gate", "--json", "--data-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    evaluation = report["evaluation"]
    assert evaluation["golden_set"] == "sample" and evaluation["questions"] >= 50
    assert evaluation["gate_passed"] and not evaluation["generation_tier"]
    assert evaluation["aggregates"]["non_llm_context_recall"] >= 0.75
    assert evaluation["collection"].startswith("knowledge-eval-sample__")
    assert report["promotion"]["alias"] == "knowledge-eval-sample"
    assert report["promotion"]["collection"] == evaluation["collection"]

    questions = evaluation["questions"]
    for stage in ("embedding questions", "retrieval"):  # progress, in the log the CLI and the UI show
        assert re.search(rf"{stage}: {questions}/{questions} questions \([\d.]+/s, [\d.]+ s\)", run.stderr), stage
    assert evaluation["retriever"] == "hybrid" and evaluation["hit_cutoffs"] == [1, 3, 5, 10]
    assert evaluation["chunks"] == report["ingest"]["points"]
    assert 0 < evaluation["aggregates"]["retrieved_tokens"] <= 5 * 256
    worst = evaluation["worst"][0]
    assert worst["question"] and worst["expected_sources"] and worst["top_source"] and worst["reason"]

    status = json.loads(ragpipe("status", "--json", "--data-dir", str(tmp_path)).stdout)
    assert status["alias"] == {"name": "knowledge", "target": None}  # the serving alias is not evaluation's
    assert status["collections"] == {evaluation["collection"]: report["ingest"]["points"]}

    # Re-scored with other settings beside the kept version: the index and question vectors are reused.
    version = evaluation["collection"].split("__")[1]
    run = ragpipe("eval", "--top-k", "3", "--retriever", "dense", "--compare", version, "--data-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0].endswith(f"({evaluation['chunks']} chunks), retriever dense, top 3")
    assert "seconds: embedding 0.0" in run.stdout  # the question vectors came from the cache
    worst_at = lines.index("worst questions:")
    assert lines[worst_at + 1].startswith("  ") and "?" in lines[worst_at + 1]
    assert lines[worst_at + 2].strip().startswith("expected ") and "top retrieved" in lines[worst_at + 2]
    compared_at = next(i for i, line in enumerate(lines) if line.startswith("compared with "))
    assert lines[compared_at] == f"compared with {evaluation['collection']} ({evaluation['chunks']} chunks), retrieval tier:"
    compared = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[compared_at + 2:]
                if line.startswith("  ")}
    assert {"hit@1", "mrr@10", "non_llm_context_recall", "retrieved_tokens"} <= set(compared)
    # The kept version is this very collection, scored the same way: every figure must agree.
    assert all(candidate == kept and change == 0 for candidate, kept, change in compared.values())


def test_eval_gate_fails_readably_on_an_absurd_chunk_size(tmp_path):
    run = ragpipe("eval", "--gate", "--chunk-size", "16", "--chunk-overlap", "0", "--data-dir", str(tmp_path))
    assert run.returncode == 1
    assert "gate: FAILED" in run.stdout
    failure = next(line for line in run.stdout.splitlines() if "[FAIL]" in line)
    assert failure.startswith("  [FAIL] retrieval_floor: non_llm_context_recall 0.")
    assert "RAGAS non-LLM context recall of the top 5 chunks" in failure  # the gate names its definition
    assert "< floor 0.75" in failure and "chunk size/overlap" in failure
    assert "not promoted: the gate failed; alias knowledge-eval-sample left as it was" in run.stdout


def test_eval_with_both_tiers_makes_no_network_call(tmp_path):
    """RAGAS (telemetry, tiktoken files) and the LLM clients stay on loopback: the judge and
    generator are the local contract server (``ChatServer``), everything else is refused."""
    answers = write_golden_set(tmp_path / "golden")
    log = tmp_path / "blocked.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "TRANSFORMERS_", "DO_NOT_TRACK", "RAGAS_", "RAGPIPE_"))}
    with ChatServer(answers) as server:
        env.update(AIRGAP_LOG=str(log), RAGPIPE_GENERATOR_URL=server.url, RAGPIPE_GENERATOR_MODEL="g",
                   RAGPIPE_JUDGE_URL=server.url, RAGPIPE_JUDGE_MODEL="j")
        completed = subprocess.run(
            [sys.executable, "-c", RUN_WITH_GUARD, "eval", "--gate", "--json",
             "--golden-set", str(tmp_path / "golden"), "--data-dir", str(tmp_path / "data")],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
        )
    blocked = log.read_text() if log.exists() else ""
    assert blocked == "", f"network calls attempted:\n{blocked}"
    assert completed.returncode == 0, completed.stderr[-3000:]
    evaluation = json.loads(completed.stdout)["evaluation"]
    assert evaluation["generation_tier"] and evaluation["aggregates"]["faithfulness"] == 1.0
