"""Shards in the code location (RAGPIPE_SHARDS > 1): the ingestion assets partitioned by bucket
range, a collection tag per shard for the run queue, and run requests split by shard.

One shard count (1) means no partitions at all: the graph, jobs, tags and requests are those of
an unsharded code location.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import PartitionedConfig, RunConfig, RunRequest, StaticPartitionsDefinition

from assets.ingestion.assets import targeted_run_config
from core.shards import by_shard, shard_ranges
from pipelines.instance import COLLECTION_TAG


def shard_partitions(count: int) -> StaticPartitionsDefinition | None:
    """One static partition per shard, keyed by its bucket range; None for one shard."""
    return StaticPartitionsDefinition([shard.key for shard in shard_ranges(count)]) if count > 1 else None


def partitioned(assets: Sequence, partitions: StaticPartitionsDefinition | None) -> list:
    """The assets with ``partitions`` (one definition each, whatever the shard count)."""
    if partitions is None:
        return list(assets)
    return [asset.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions))
            for asset in assets]


def shard_job_config(partitions: StaticPartitionsDefinition, alias: str,
                     run_config: RunConfig | None = None) -> PartitionedConfig:
    """A partitioned job's config: each shard's run is tagged ``<alias>/<shard key>``, so the
    run queue's limit of one run per collection tag value keeps two runs of one shard apart
    and never serialises the shards of a collection (the per-shard writer lease backs it up
    for runs launched past the queue)."""
    config = run_config.to_config_dict() if run_config else {}
    return PartitionedConfig(partitions_def=partitions, run_config_for_partition_key_fn=lambda _: config,
                             tags_for_partition_key_fn=lambda key: {COLLECTION_TAG: f"{alias}/{key}"})


def shard_requests(count: int, run_key: str, tags: dict[str, str], upsert: list[str] | None = None,
                   delete: list[str] | None = None) -> list[RunRequest]:
    """The runs that carry out one request: a full reconcile (no ``upsert``/``delete``) runs
    every shard; a targeted one runs each shard that a named source falls in, with only its
    sources. One shard: one unpartitioned request, as without shards."""
    targeted = upsert is not None or delete is not None
    upsert, delete = sorted(upsert or []), sorted(delete or [])
    if count == 1:
        return [RunRequest(run_key=run_key, tags=tags,
                           **({"run_config": targeted_run_config(upsert, delete)} if targeted else {}))]
    if not targeted:
        return [RunRequest(run_key=f"{run_key}/{shard.key}", tags=tags, partition_key=shard.key)
                for shard in shard_ranges(count)]
    upserts, deletes = set(upsert), set(delete)
    return [
        RunRequest(run_key=f"{run_key}/{shard.key}", tags=tags, partition_key=shard.key,
                   run_config=targeted_run_config([u for u in uris if u in upserts], [u for u in uris if u in deletes]))
        for shard, uris in by_shard([*upsert, *delete], count).items()
    ]
