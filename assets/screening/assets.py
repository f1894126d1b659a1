"""The screening group: the quarantine as data, and the watch on its rate."""


from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MetadataValue,
    Output,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from assets.ingestion.stages import logical_run_id, shard_of_run
from assets.placement import LIGHT_CPU_STEP
from assets.screening.injection_classifier import build_injection_classifier
from assets.screening.pii import PiiEngine
from assets.screening.screen import Screener
from core.types import Manifest, QuarantineEntry
from resources.azure_ai import InjectionShield, PiiDetector
from resources.ledger import Ledger
from resources.screening import ScreeningSettings
from resources.settings import IngestionSettings

GROUP = "screening"
MAX_LISTED = 200

_TABLE_SCHEMA = TableSchema(columns=[
    TableColumn("source", "string"),
    TableColumn("doc_id", "string"),
    TableColumn("version", "string"),
    TableColumn("scanner", "string"),
    TableColumn("rule_ids", "string"),
    TableColumn("score", "float"),
    TableColumn("reason", "string"),
    TableColumn("quarantined_at", "string"),
])


def build_screener(screening: ScreeningSettings, ingestion: IngestionSettings, ledger: Ledger,
                   pii_detector: PiiDetector, injection_shield: InjectionShield) -> Screener:
    """The run's screener: the configured PII engine, the optional Azure backends, and
    the operator's releases."""
    return Screener(
        pii=PiiEngine(screening.pii_config(), hash_salt=screening.pii_hash_salt),
        threshold=ingestion.poisoning_threshold,
        pii_detector=pii_detector if pii_detector.configured else None,
        injection_shield=injection_shield if injection_shield.configured else None,
        injection_classifier=build_injection_classifier(screening),
        released=ledger.released_doc_ids(),
    )


def quarantine_rate(quarantined: int, attempted: int) -> float:
    return quarantined / attempted if attempted else 0.0


def _as_record(entry: QuarantineEntry) -> dict:
    return {
        "source": entry.source,
        "doc_id": entry.doc_id,
        "version": entry.version,
        "scanner": entry.scanner,
        "rule_ids": list(entry.rule_ids),
        "score": entry.score,
        "reason": entry.reason,
        "quarantined_at": entry.quarantined_at.isoformat(),
        "run_id": entry.run_id,
    }


def _table(records: list[dict]) -> MetadataValue:
    return MetadataValue.table(
        records=[
            TableRecord({**{k: r[k] for k in ("source", "doc_id", "version", "scanner", "reason", "quarantined_at")},
                         "rule_ids": ", ".join(r["rule_ids"]), "score": r["score"]})
            for r in records[:MAX_LISTED]
        ],
        schema=_TABLE_SCHEMA,
    )


@asset(
    group_name=GROUP,
    kinds={"python", "security"},
    op_tags=LIGHT_CPU_STEP,
    deps=[AssetKey("vector_index")],
    description=(
        "The documents kept out of the current index version, in the run's shard when there are "
        "shards (source, doc_id, version, scanner, rule ids, score, reason, time), read from the "
        "ledger after each ingestion run. Release "
        "one with `ragpipe quarantine release DOC_ID --reason ...`; it is indexed on the next run."
    ),
    check_specs=[
        AssetCheckSpec("quarantine_rate", asset="quarantine",
                       description="The share of this run's documents that were quarantined is below the "
                                   "alert level: a rising rate is an attack or a broken source."),
    ],
)
def quarantine(context: AssetExecutionContext, raw_documents: Manifest, ledger: Ledger,
               screening_settings: ScreeningSettings):
    version = raw_documents.extra["index_version"]
    records = [_as_record(entry) for entry in ledger.quarantined(version, shard_of_run(context))]
    in_run = ledger.run_counts(version, logical_run_id(context))["quarantined"]
    attempted = raw_documents.extra["attempted"]
    rate, limit = quarantine_rate(in_run, attempted), screening_settings.quarantine_rate_warn
    yield Output(records, metadata={
        "quarantined": len(records),
        "quarantined_this_run": in_run,
        "attempted_this_run": attempted,
        "index_version": version,
        "documents": _table(records),
    })
    yield AssetCheckResult(
        check_name="quarantine_rate",
        passed=rate <= limit,
        severity=AssetCheckSeverity.WARN,
        metadata={"quarantined": in_run, "attempted": attempted, "rate": round(rate, 4), "warn_above": limit},
        description=f"{in_run} of {attempted} documents quarantined this run ({rate:.1%}; warn above {limit:.1%})",
    )


SCREENING_ASSETS = [quarantine]
