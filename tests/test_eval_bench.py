"""The evaluation bench keeps the fastest run of each side and reports the ratio of those."""

from __future__ import annotations

from itertools import count

from bench import eval_bench


def test_best_of_keeps_the_fastest_run_of_each_side_and_divides_those(monkeypatch):
    asks = iter([{"embed_s": 9.0, "search_s": 1.0, "total_s": 10.0}, {"embed_s": 7.0, "search_s": 1.0, "total_s": 8.0}])
    runs = count()
    seconds = {"dense": [6.0, 4.0], "hybrid": [9.0, 12.0]}

    def evaluation(golden, store, embedder, collection, mode, top_k):
        next(runs)
        return {"evaluation_s": seconds[mode].pop(0), "metrics": {"hit@5": 0.5}}

    monkeypatch.setattr(eval_bench, "time_ask", lambda *args: next(asks))
    monkeypatch.setattr(eval_bench, "time_evaluation", evaluation)
    ask, retrievers = eval_bench.best_of(2, None, None, None, "c", 5)
    assert ask["total_s"] == 8.0 and next(runs) == 4
    assert retrievers["dense"] == {"evaluation_s": 4.0, "metrics": {"hit@5": 0.5}, "ratio": 0.5}
    assert retrievers["hybrid"]["ratio"] == 1.12


def test_markdown_has_one_row_per_retriever_with_missing_metrics_as_dashes():
    metrics = dict.fromkeys(eval_bench.METRICS, 0.8125) | {"answer_hit@1": None, "retrieved_tokens": 356.04}
    result = {"golden_set": "sample", "rounds": 3, "questions": 68, "chunks": 90, "top_k": 5,
              "ask": {"embed_s": 1.0, "search_s": 0.2, "total_s": 1.2, "batch_search_s": 0.1},
              "retrievers": {"dense": {"evaluation_s": 1.5, "ratio": 1.25, "metrics": metrics}}}
    lines = eval_bench.markdown(result).splitlines()
    assert lines[0].startswith("Golden set sample: 68 questions, 90 chunks;")
    assert lines[-1] == "| dense | 1.50 | 1.25 | 0.812 | 0.812 | 0.812 | 0.812 | - | 0.812 | 0.812 | 0.812 | 356 |"
