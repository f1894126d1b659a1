"""``ragpipe``: drive the Dagster assets from a shell (the same job the UI runs)."""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pipelines.instance import ensure_dagster_home, ensure_data_dir
from pipelines.settings import Settings
from resources.settings import SettingsError

REPAIR_COUNTS = ("repaired_orphan_sources", "repaired_removed_points", "repaired_incomplete_documents")


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command's flags; SettingsError if one cannot work."""
    settings = Settings.from_env(
        data_dir=args.data_dir,
        source_dir=getattr(args, "source", None),
        chunk_size_tokens=getattr(args, "chunk_size", None),
        chunk_overlap_tokens=getattr(args, "chunk_overlap", None),
        golden_set=getattr(args, "golden_set", None),
        retriever=getattr(args, "retriever", None),
        top_k=getattr(args, "top_k", None),
    )
    ensure_data_dir(settings.data_path)
    return settings


def _metadata_values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def _root_cause(error) -> str:
    """The innermost error's message: Dagster wraps step errors in its own."""
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    if error.cls_name == "Failure":  # our own description, behind Dagster's class path
        message = message.split(": ", 1)[-1]
    return message


def summarize(result, wall_seconds: float) -> dict[str, Any]:
    """The run's summary, read from the assets' materialization metadata and check results."""
    from assets.ingestion.changes import CHANGE_CLASSES

    stages: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        stages[materialization.asset_key.to_user_string()] = _metadata_values(materialization.metadata)
    raw, chunks = stages.get("raw_documents", {}), stages.get("chunks", {})
    embeddings, index = stages.get("embeddings", {}), stages.get("vector_index", {})
    rejected = {
        status: index.get(status, sum(s.get(status, 0) for s in stages.values()))
        for status in ("quarantined", "failed")
    }
    errors = [
        f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error
    ]
    errors += [
        f"check {e.check_name} failed: {e.description or ''}".strip()
        for e in (ev.event_specific_data for ev in result.all_events if ev.event_type_value == "ASSET_CHECK_EVALUATION")
        if not e.passed and e.severity.value == "ERROR"
    ]
    return {
        "run_id": result.run_id,
        "success": result.success,
        "documents": {
            **{c: raw.get(c, 0) for c in CHANGE_CLASSES},
            **rejected,
        },
        "chunks": chunks.get("chunks", 0),
        "tokens": chunks.get("tokens", 0),
        "embedded": embeddings.get("embedded", 0),
        "reused_vectors": embeddings.get("reused", 0),
        "upserted": index.get("upserted", 0),
        "deleted_points": index.get("deleted_points", 0) + index.get("replaced_points", 0),
        "mode": raw.get("mode"),
        "source_bytes_read": raw.get("source_bytes_read", 0),
        "index_version": raw.get("index_version"),
        "collection": raw.get("collection"),
        "points": index.get("points"),
        "repaired": {name.removeprefix("repaired_"): raw.get(name, 0) for name in REPAIR_COUNTS},
        "unlisted": raw.get("unlisted", []),
        "stale_manifest_skipped": bool(index.get("stale_manifest_skipped")),
        "stage_seconds": {name: meta.get("duration_s") for name, meta in stages.items()},
        "wall_seconds": round(wall_seconds, 2),
        "errors": errors,
    }


def _print_summary(summary: dict[str, Any]) -> None:
    docs = summary["documents"]
    print(f"run {summary['run_id']}: {'succeeded' if summary['success'] else 'FAILED'} "
          f"in {summary['wall_seconds']} s")
    if summary["collection"] is not None:  # None: the run stopped before it read the source
        print(f"{summary['mode']}: read {summary['source_bytes_read']:,} document bytes from the source")
        print("documents: " + ", ".join(f"{name} {count}" for name, count in docs.items()))
        print(f"chunks {summary['chunks']} ({summary['tokens']} tokens), embedded {summary['embedded']}, "
              f"reused {summary['reused_vectors']}, upserted {summary['upserted']}, "
              f"deleted points {summary['deleted_points']}")
        print(f"collection {summary['collection']} (index version {summary['index_version']}): "
              f"{summary['points']} points")
    if any(summary["repaired"].values()):
        print("repaired drift: " + ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in summary["repaired"].items()))
    for part in summary["unlisted"]:
        print(f"warning: could not list {part['part']} ({part['reason']}); its indexed documents were kept",
              file=sys.stderr)
    for error in summary["errors"]:
        print(f"error: {error}", file=sys.stderr)


def _execute(settings: Settings, job: str, resource_overrides: dict | None, log_level: str,
             run_config: dict | None = None, partition_key: str | None = None, tags: dict[str, str] | None = None):
    """Run a job (one partition of it: a shard) in process on the data directory's instance;
    returns the result and seconds.

    Raises ValueError, before any work, on settings the embedder cannot honour.
    """
    from dagster import DagsterInstance

    from pipelines.definitions import build_definitions

    definitions = build_definitions(settings, resource_overrides)
    resources = definitions.resources
    embedder = resources["embedder"]
    resources["ingestion_settings"].validate_against(embedder.max_input_tokens(), embedder.name())
    ensure_dagster_home(settings.dagster_home)
    started = time.monotonic()
    job_def = definitions.resolve_job_def(job)
    # Dagster applies a partition's own config only when given none: the log level is config too.
    shard_config = job_def.partitioned_config.get_run_config_for_partition_key(partition_key) if partition_key else {}
    with DagsterInstance.get() as instance:
        result = job_def.execute_in_process(
            run_config={**shard_config, **(run_config or {}),
                        "loggers": {"console": {"config": {"log_level": log_level}}}},
            instance=instance,
            partition_key=partition_key,
            tags=tags,
            raise_on_error=False,
        )
    return result, time.monotonic() - started


def run_ingest(settings: Settings, resource_overrides: dict | None = None, log_level: str = "INFO",
               upsert: list[str] = (), delete: list[str] = (), shards: list[str] | None = None,
               job: str | None = None, census: bool = False) -> dict[str, Any]:
    """Run the ``ingest`` job, targeted at ``upsert``/``delete`` URIs when any are given (a
    full reconcile otherwise); return its summary. ValueError on invalid settings.

    With shards (RAGPIPE_SHARDS > 1), one run per shard, one after the other: every shard (or
    those named in ``shards``, by partition key), or in a targeted run each shard a named URI
    falls in with only its URIs; the summary adds up the runs'. ``census``: compare every point
    of the index with the ledger, as the nightly reconcile does, even after a clean run."""
    from assets.ingestion.assets import CENSUS_TAG
    from core.shards import shard_ranges
    from pipelines.definitions import INGEST_JOB
    from pipelines.sharding import shard_requests

    valid = [shard.key for shard in shard_ranges(settings.shards)] if settings.shards > 1 else []
    if shards is not None and not set(shards) <= set(valid):
        raise ValueError(f"no shard {min(set(shards) - set(valid))} with RAGPIPE_SHARDS={settings.shards}; "
                         f"shards: {', '.join(valid) or 'none (unsharded)'}")
    targeted = bool(upsert or delete)
    tags = {CENSUS_TAG: "full"} if census else {}
    requests = shard_requests(settings.shards, "cli", tags, *((list(upsert), list(delete)) if targeted else ()))
    summaries = {
        request.partition_key: summarize(*_execute(settings, job or INGEST_JOB, resource_overrides, log_level,
                                                   request.run_config or None, request.partition_key, request.tags))
        for request in requests if shards is None or request.partition_key in shards
    }
    if not summaries:
        raise ValueError(f"none of the named sources is in shard(s) {', '.join(shards)}")
    return summaries[None] if settings.shards == 1 else merge_summaries(summaries)


SUMMED = ("chunks", "tokens", "embedded", "reused_vectors", "upserted", "deleted_points", "source_bytes_read",
          "points", "wall_seconds")


def merge_summaries(by_shard: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One summary for the runs of several shards: counts added up, every run id and error kept."""
    summaries = list(by_shard.values())
    merged = {**summaries[0], "run_id": ",".join(s["run_id"] for s in summaries),
              "success": all(s["success"] for s in summaries),
              "errors": [error for s in summaries for error in s["errors"]],
              "unlisted": [part for s in summaries for part in s["unlisted"]],
              "shards": {key: s["run_id"] for key, s in by_shard.items()}}
    for name in SUMMED:
        merged[name] = sum(s[name] or 0 for s in summaries)
    for group in ("documents", "repaired"):
        merged[group] = {key: sum(s[group][key] for s in summaries) for key in summaries[0][group]}
    return merged


def source_uri(name: str) -> str:
    """A URI as given, or a local path as its file:// URI (``--only docs/a.pdf``)."""
    return name if "://" in name else Path(name).expanduser().resolve().as_uri()


def cmd_ingest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        summary = run_ingest(settings, log_level="DEBUG" if args.verbose else "INFO",
                             upsert=[source_uri(name) for name in args.only],
                             delete=[source_uri(name) for name in args.delete], shards=args.shard or None,
                             census=args.census)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
        print(f"open the UI: ragpipe ui --data-dir {settings.data_dir}  (then http://127.0.0.1:3000)")
    return 0 if summary["success"] else 1


def status(settings: Settings) -> dict[str, Any]:
    from assets.promotion.versions import kept_collections
    from pipelines.definitions import build_resources

    resources = build_resources(settings)
    store, alias = resources["vector_store"], settings.collection
    try:
        collections = store.collections()
        history = resources["evaluation_store"].promotions(alias)
        return {
            "ledger": resources["ledger"].status_counts(),
            "collections": collections,
            "alias": {"name": alias, "target": store.alias_target(alias)},
            "versions_kept": [c for c in kept_collections(history, settings.keep_versions) if c in collections],
        }
    finally:
        store.close()


def cmd_status(args: argparse.Namespace) -> int:
    report = status(_settings(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for version, counts in report["ledger"].items():
        print(f"index version {version}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for name, count in report["collections"].items():
        print(f"collection {name}: {count} points")
    print(f"alias {report['alias']['name']} -> {report['alias']['target'] or '(not promoted yet)'}; "
          f"versions kept: {', '.join(report['versions_kept']) or 'none'}")
    return 0


def search(settings: Settings, query: str, groups: list[str] | None, k: int) -> list[dict[str, Any]]:
    """The top ``k`` chunks of the promoted index for ``query``, as the configured retriever
    ranks them for a caller in ``groups`` (None: untrimmed). ValueError when nothing is promoted."""
    from assets.evaluation.retrieval import Retriever
    from pipelines.definitions import build_resources

    resources = build_resources(settings)
    store, alias = resources["vector_store"], settings.collection
    try:
        if store.alias_target(alias) is None:
            raise ValueError(f"alias {alias} points to no index yet: run `ragpipe promote` first")
        retriever = Retriever(store, resources["embedder"], alias, settings.retriever,
                              unlabelled=settings.unlabelled_access)
        hits = retriever.search(query, k, groups=groups)
    finally:
        store.close()
    fields = ("source", "chunk_id", "title", "section", "acl", "text")
    return [{"score": round(hit.score, 4), **{name: hit.payload.get(name) for name in fields}} for hit in hits]


def cmd_search(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        hits = search(settings, args.query, None if args.all else args.group, args.k or settings.top_k)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"query": args.query, "groups": None if args.all else args.group, "hits": hits}, indent=2))
        return 0
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank}. {hit['score']:.4f} {hit['source']} #{hit['chunk_id']} acl {hit['acl'] or '-'}: "
              f"{hit['title']}{' > ' + hit['section'] if hit['section'] else ''}")
        print(f"   {' '.join((hit['text'] or '').split())[:200]}")
    return 0


def _output_of(result, node: str) -> Any:
    try:
        return result.output_for_node(node)
    except Exception:  # noqa: BLE001 - the step did not run or failed; the run's errors say why
        return None


def _run_evaluation_job(settings: Settings, job: str, resource_overrides: dict | None, log_level: str,
                        ingest_job: str) -> dict[str, Any]:
    """The job; with shards, after every shard of ``ingest_job`` (the evaluation job then only
    scores and promotes; a failed shard leaves the candidate incomplete, which its gate reports)."""
    ingest = run_ingest(settings, resource_overrides, log_level, job=ingest_job) if settings.shards > 1 else None
    result, seconds = _execute(settings, job, resource_overrides, log_level)
    evaluation = _output_of(result, "rag_evaluation")
    return {
        "run_id": result.run_id, "success": result.success and (ingest is None or ingest["success"]),
        "gate_passed": None if evaluation is None else evaluation["gate_passed"],
        "ingest": ingest or summarize(result, seconds), "evaluation": evaluation,
        "promotion": _output_of(result, "promoted_index"),
    }


def run_eval(settings: Settings, resource_overrides: dict | None = None, log_level: str = "INFO") -> dict[str, Any]:
    """Run ``evaluate_golden_set``: build or reuse the golden set's own candidate index in its
    namespace, score it, promote it there if the gate passes. ValueError on invalid settings."""
    from pipelines.definitions import GOLDEN_INGEST_JOB, GOLDEN_SET_JOB

    return _run_evaluation_job(settings, GOLDEN_SET_JOB, resource_overrides, log_level, GOLDEN_INGEST_JOB)


def run_promote(settings: Settings, resource_overrides: dict | None = None, log_level: str = "INFO") -> dict[str, Any]:
    """Run ``promote_production``: bring the production candidate up to date with the source,
    score it with the golden set's questions, move the serving alias if the gate passes."""
    from pipelines.definitions import INGEST_JOB, PRODUCTION_JOB

    return _run_evaluation_job(settings, PRODUCTION_JOB, resource_overrides, log_level, INGEST_JOB)


RANKING = ("hit@", "mrr@", "ndcg@")


def _ranking_table(aggregates: dict[str, Any]) -> list[str]:
    """hit@k, MRR and nDCG as rows, one column per relevance definition the golden set supports."""
    names = list(dict.fromkeys(name.removeprefix("answer_") for name in aggregates
                               if name.removeprefix("answer_").startswith(RANKING)))
    columns = [(label, prefix) for label, prefix in (("context", ""), ("answer", "answer_"))
               if any(prefix + name in aggregates for name in names)]
    lines = [f"  {'':<28}" + "".join(f" {label:>8}" for label, _ in columns)] if names else []
    for name in names:
        values = [aggregates.get(prefix + name) for _, prefix in columns]
        lines.append(f"  {name:<28}" + "".join(f" {v:>8.3f}" if v is not None else f" {'-':>8}" for v in values))
    return lines


def _print_evaluation(summary: dict[str, Any], settings: Settings) -> None:
    thresholds = {
        "non_llm_context_recall": f"floor {settings.min_retrieval_recall:.2f}",
        "faithfulness": f"threshold > {settings.faithfulness_threshold:.2f}",
        "composite": f"threshold > {settings.composite_threshold:.2f}",
    }
    aggregates = summary["aggregates"]
    print(f"golden set {summary['golden_set']} ({summary['questions']} questions) on {summary['collection']} "
          f"({summary['chunks']} chunks), retriever {summary['retriever']}, top {summary['top_k']}")
    for note in summary["golden_set_notes"]:
        print(f"  note: {note}")
    print("  ranking (context: reference-context coverage; answer: answer span in the chunk)")
    for line in _ranking_table(aggregates):
        print(line)
    for name, value in aggregates.items():
        if not name.removeprefix("answer_").startswith(RANKING) and name != "retrieved_tokens":
            print(f"  {name:<28} {value:>8.3f}  {thresholds.get(name, '')}")
    if "retrieved_tokens" in aggregates:
        print(f"  {'retrieved tokens/question':<28} {aggregates['retrieved_tokens']:>8.0f}  (top {summary['top_k']})")
    if not summary["generation_tier"]:
        print("  generation metrics not computed (no generator/judge configured): retrieval tier only")
    for name, counts in summary["scored"].items():
        if counts["scored"] < counts["applicable"]:
            print(f"  {name} scored on {counts['scored']} of {counts['applicable']} questions")
    for error in summary["errors"]:
        print(f"  error ({error['count']}×) in {error['where']}: {error['type']}: {error['message']}")
    print("  seconds: " + ", ".join(f"{stage} {value:.1f}" for stage, value in summary["seconds"].items())
          + "; tokens: " + ", ".join(f"{k} {v}" for k, v in summary["tokens"].items()))
    print(f"gate: {'PASSED' if summary['gate_passed'] else 'FAILED'}")
    for verdict in summary["gate"]:
        print(f"  [{'pass' if verdict['passed'] else 'FAIL'}] {verdict['check']}: {verdict['reason']}")
    print("worst questions:")
    for worst in summary["worst"]:
        print(f"  {worst['id']}: {worst['question']}")
        print(f"      expected {', '.join(worst['expected_sources']) or '(any source)'}; "
              f"top retrieved {worst['top_source'] or '(nothing)'}; {worst['reason']}")


def compare_version(settings: Settings, alias: str, version: str) -> dict[str, Any]:
    """Score a kept index version of ``alias`` on the same golden set, retriever, top k and
    cutoffs (retrieval tier, with the current embedder); ValueError when it is not there."""
    from assets.evaluation.golden import load_golden_set
    from assets.evaluation.scoring import evaluate_collection
    from assets.ingestion.stages import collection_name
    from pipelines.definitions import build_resources

    resources = build_resources(settings)
    store, embedder, evaluation = resources["vector_store"], resources["embedder"], resources["evaluation_settings"]
    target = version if version.startswith(f"{alias}__") else collection_name(alias, version)
    try:
        if not store.collection_exists(target):
            kept = sorted(name for name in store.collections() if name.startswith(f"{alias}__"))
            raise ValueError(f"no collection {target} to compare with; versions kept: {', '.join(kept) or 'none'}")
        scored = evaluate_collection(load_golden_set(settings.golden_set_path), store, embedder, target, evaluation,
                                     question_cache=resources["evaluation_store"])
        return {"collection": target, "chunks": store.count(target), "aggregates": scored.aggregates}
    finally:
        store.close()


def _print_comparison(summary: dict[str, Any], other: dict[str, Any]) -> None:
    print(f"compared with {other['collection']} ({other['chunks']} chunks), retrieval tier:")
    print(f"  {'':<28} {'candidate':>10} {'compared':>10} {'change':>8}")
    for name, value in summary["aggregates"].items():
        if name in other["aggregates"]:
            before = other["aggregates"][name]
            print(f"  {name:<28} {value:>10.3f} {before:>10.3f} {value - before:>+8.3f}")


def cmd_evaluation(args: argparse.Namespace, run) -> int:
    """``ragpipe eval`` (run_eval) and ``ragpipe promote`` (run_promote): one report, one exit code."""
    settings = _settings(args)
    try:
        report = run(settings, log_level="DEBUG" if args.verbose else "INFO")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    evaluation, promotion = report["evaluation"], report["promotion"]
    gate_failed = report["gate_passed"] is False
    other_errors = evaluation is None or (not report["success"] and not gate_failed)
    if args.compare and evaluation is not None:
        try:
            report["comparison"] = compare_version(settings, evaluation["alias"], args.compare)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        if evaluation is not None:
            _print_evaluation(evaluation, settings)
        if "comparison" in report:
            _print_comparison(evaluation, report["comparison"])
        if promotion is not None:
            print(f"promoted: alias {promotion['alias']} -> {promotion['collection']} "
                  f"(was {promotion['previous'] or 'none'}); kept {', '.join(promotion['kept'])}")
        elif gate_failed:
            print(f"not promoted: the gate failed; alias {evaluation['alias']} left as it was")
    for error in report["ingest"]["errors"] if other_errors else []:
        print(f"error: {error}", file=sys.stderr)
    if other_errors:
        return 1
    return 1 if gate_failed and args.gate else 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from assets.promotion.assets import ROLLBACK_JOB

    settings = _settings(args)
    result, _ = _execute(settings, ROLLBACK_JOB, None, "INFO",
                         run_config={"ops": {"roll_back_alias": {"config": {"version": args.version}}}})
    promotion = _output_of(result, "roll_back_alias")
    if promotion is None:
        for error in summarize(result, 0)["errors"]:
            print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(promotion, indent=2))
    else:
        print(f"alias {promotion['alias']} -> {promotion['collection']} (was {promotion['previous'] or 'none'})")
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from pipelines.definitions import build_resources

    ledger = build_resources(_settings(args))["ledger"]
    entries = {version: ledger.quarantined(version) for version in ledger.status_counts()}
    if args.json:
        print(json.dumps({v: [asdict(e) for e in es] for v, es in entries.items()}, indent=2, default=str))
        return 0
    for version, listed in entries.items():
        for entry in listed:
            print(f"{version} {entry.doc_id} {entry.source} [{entry.scanner}: {', '.join(entry.rule_ids) or '-'}] "
                  f"{entry.reason}")
    return 0


def cmd_quarantine_release(args: argparse.Namespace) -> int:
    """Allow-list a quarantined document's content; the next ingest run indexes it."""
    from pipelines.definitions import build_resources

    ledger = build_resources(_settings(args))["ledger"]
    released = ledger.release(args.doc_id, args.reason, args.by or getpass.getuser())
    if not released:
        print(f"error: no quarantined document has doc_id {args.doc_id} (see `ragpipe quarantine list`)",
              file=sys.stderr)
        return 1
    print(f"released {args.doc_id} ({released} ledger row(s)); the next `ragpipe ingest` indexes it")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Start ``dagster dev`` on this data directory's instance (SQLite, telemetry off)."""
    settings = _settings(args)
    ensure_dagster_home(settings.dagster_home)
    os.environ["RAGPIPE_DATA_DIR"] = str(settings.data_path)
    # dagster dev started from a non-interactive shell inherits ignored SIGINT/SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    repo_root = Path(__file__).resolve().parent.parent
    os.chdir(repo_root)
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(dagster, [str(dagster), "dev", "-h", args.host, "-p", str(args.port)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ragpipe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="bring the index up to date with the source")
    ingest.add_argument("--source", type=Path, help="folder of documents (default: the sample corpus)")
    ingest.add_argument("--chunk-size", type=int, help="chunk size in embedder tokens")
    ingest.add_argument("--only", action="append", default=[], metavar="URI",
                        help="a targeted run: index only this source (a URI or a local path; repeatable); "
                             "the source is not listed and nothing else is deleted")
    ingest.add_argument("--delete", action="append", default=[], metavar="URI",
                        help="a targeted run: remove this source from the index if it no longer exists (repeatable)")
    ingest.add_argument("--shard", action="append", default=[], metavar="KEY",
                        help="with RAGPIPE_SHARDS > 1: run only this shard (its partition key, e.g. 00000-16383; "
                             "repeatable); default: every shard, one after the other")
    ingest.add_argument("--census", action="store_true",
                        help="compare every point of the index with the ledger and repair drift, as the nightly "
                             "reconcile does (a run after a clean one skips that when the point counts agree)")
    ingest.add_argument("--verbose", action="store_true", help="log every Dagster event")
    ingest.set_defaults(handler=cmd_ingest)

    status_parser = commands.add_parser("status", help="ledger counts and collection sizes")
    status_parser.set_defaults(handler=cmd_status)

    evaluate = commands.add_parser(
        "eval", help="build the golden set's own corpus in its own namespace, score it, promote it there if it passes")
    promote = commands.add_parser(
        "promote", help="score the production index on the golden set's questions; move the serving alias if it passes")
    promote.add_argument("--source", type=Path, help="folder of documents (default: RAGPIPE_SOURCE_DIR)")
    for sub, run in ((evaluate, run_eval), (promote, run_promote)):
        sub.add_argument("--golden-set", help="a folder under golden_sets/ or a path (default: sample)")
        sub.add_argument("--retriever", choices=("dense", "hybrid"), help="default: hybrid (RAGPIPE_RETRIEVER)")
        sub.add_argument("--top-k", type=int, help="chunks a generator reads, scored by RAGAS (default: RAGPIPE_TOP_K)")
        sub.add_argument("--compare", metavar="VERSION",
                         help="also score this kept index version (or collection) the same way and print both")
        sub.add_argument("--chunk-size", type=int, help="chunk size in embedder tokens")
        sub.add_argument("--chunk-overlap", type=int, help="chunk overlap in embedder tokens")
        sub.add_argument("--gate", action="store_true", help="exit 1 when the promotion gate fails")
        sub.add_argument("--verbose", action="store_true", help="log every Dagster event")
        sub.set_defaults(handler=functools.partial(cmd_evaluation, run=run))

    rollback = commands.add_parser("rollback", help="point the alias back to a kept index version")
    rollback.add_argument("version", help="an index version or a collection name (see ragpipe status)")
    rollback.set_defaults(handler=cmd_rollback)

    search_parser = commands.add_parser(
        "search", help="search the promoted index as a caller in some groups (the serving retriever)",
        description="Either --group or --all is required: a search that forgot its caller's groups must "
                    "fail, not silently return every restricted chunk.")
    search_parser.add_argument("query")
    caller = search_parser.add_mutually_exclusive_group(required=True)
    caller.add_argument("--group", action="append", metavar="G",
                        help="a group of the caller (repeatable): only chunks these groups may see")
    caller.add_argument("--all", action="store_true", help="a trusted caller: no access trimming")
    search_parser.add_argument("-k", type=int, help="chunks to return (default: RAGPIPE_TOP_K)")
    search_parser.set_defaults(handler=cmd_search)

    ui = commands.add_parser("ui", help="open the Dagster UI on this data directory")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=cmd_ui)

    quarantine = commands.add_parser("quarantine", help="list quarantined documents or release one")
    actions = quarantine.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="quarantined documents with scanner, rule ids and reason")
    listing.set_defaults(handler=cmd_quarantine_list)
    release = actions.add_parser("release", help="allow a quarantined document into the index (by doc_id)")
    release.add_argument("doc_id", help="the document's sha256, as the quarantine asset or list shows it")
    release.add_argument("--reason", required=True, help="why this content is safe to index (kept in the ledger)")
    release.add_argument("--by", help="who releases it (default: the current user)")
    release.set_defaults(handler=cmd_quarantine_release)

    for sub in (ingest, status_parser, evaluate, promote, rollback, search_parser, ui, listing, release):
        sub.add_argument("--data-dir", type=Path, help="where state lives (default: .rag_data)")
        sub.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
