"""The folder watcher and the schedules: what a tick asks for, run against the real folder
source and the ingest job's config schema; and which automation each profile starts."""

from __future__ import annotations

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_sensor_context,
    validate_run_config,
)

from core.types import SourceItem, UnlistedPart
from pipelines.automation import decode_snapshot, encode_snapshot, folder_changes
from pipelines.cli import run_ingest
from pipelines.definitions import INGEST_JOB, build_definitions
from pipelines.settings import Settings
from resources.sources import LocalFolderSource
from tests.corpus import prose
from tests.test_pipeline import assert_index_matches_ledger


def test_folder_changes_compare_the_listing_with_the_snapshot():
    previous = {"file:///c/a": "1", "file:///c/b": "1", "file:///c/locked/x": "1", "file:///c/gone": "1"}
    listing = [SourceItem("file:///c/a", "1", 1), SourceItem("file:///c/b", "2", 1),
               SourceItem("file:///c/new", "1", 1), UnlistedPart("file:///c/locked/", "PermissionError")]
    changes = folder_changes(previous, listing)
    assert changes.upsert == ["file:///c/b", "file:///c/new"]
    assert changes.delete == ["file:///c/gone"]  # the locked folder's file is kept, not deleted
    assert changes.snapshot["file:///c/locked/x"] == "1"
    assert decode_snapshot(encode_snapshot(changes.snapshot)) == changes.snapshot
    assert decode_snapshot(None) is None


def test_an_acl_change_alone_is_a_change_for_the_folder_watcher():
    labelled = SourceItem("file:///c/a", "1", 1, metadata={"acl": ["hr"]})
    before = folder_changes({}, [labelled]).snapshot
    relabelled = SourceItem("file:///c/a", "1", 1, metadata={"acl": ["hr", "finance"]})
    assert folder_changes(before, [relabelled]).upsert == ["file:///c/a"]
    assert folder_changes(before, [labelled]).count == 0


def _tick(sensor, source, cursor=None):
    context = build_sensor_context(cursor=cursor, resources={"source": source})
    return sensor(context), context.cursor


def test_the_folder_watcher_requests_a_full_run_first_then_targeted_runs(settings, corpus, index_state):
    definitions = build_definitions(settings)
    sensor = definitions.get_sensor_def("folder_watcher")
    job = definitions.resolve_job_def(INGEST_JOB)
    source = LocalFolderSource(root=str(corpus))

    [first], cursor = _tick(sensor, source)  # a list: one request per shard, and here one shard
    assert isinstance(first, RunRequest) and not first.run_config  # a full reconcile
    run_ingest(settings)
    unchanged, _ = _tick(sensor, source, cursor)
    assert isinstance(unchanged, SkipReason)

    (corpus / "notes-3.txt").write_text(prose(900, 4), encoding="utf-8")
    (corpus / "procedure-5.md").unlink()
    [targeted], next_cursor = _tick(sensor, source, cursor)
    config = targeted.run_config["ops"]["raw_documents"]["config"]
    assert config == {"upsert": [(corpus / "notes-3.txt").resolve().as_uri()],
                      "delete": [(corpus / "procedure-5.md").resolve().as_uri()]}
    validate_run_config(job, targeted.run_config)
    summary = run_ingest(settings, upsert=config["upsert"], delete=config["delete"])
    assert (summary["documents"]["changed"], summary["documents"]["deleted"]) == (1, 1)
    assert_index_matches_ledger(index_state)
    assert targeted.run_key == _tick(sensor, source, cursor)[0][0].run_key  # same changes, same key
    assert isinstance(_tick(sensor, source, next_cursor)[0], SkipReason)


def test_automation_is_stopped_locally_and_running_in_production(tmp_path, corpus):
    local = build_definitions(Settings(data_dir=tmp_path / "l", source_dir=corpus))
    production = build_definitions(Settings(data_dir=tmp_path / "p", source_dir=corpus, profile="production",
                                            incremental_cron="*/15 * * * *"))
    assert [s.default_status for s in local.sensors] == [DefaultSensorStatus.STOPPED]
    assert [s.name for s in local.schedules] == ["reconcile_schedule"]
    assert local.schedules[0].default_status == DefaultScheduleStatus.STOPPED
    assert {s.name: s.default_status for s in production.schedules} == {
        "reconcile_schedule": DefaultScheduleStatus.RUNNING, "incremental_schedule": DefaultScheduleStatus.RUNNING}
    assert [s.default_status for s in production.sensors] == [DefaultSensorStatus.RUNNING]
    assert production.schedules[0].cron_schedule == "0 2 * * *"
