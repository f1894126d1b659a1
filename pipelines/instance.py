"""The Dagster instance of the embedded default: SQLite storage under the data directory."""

from __future__ import annotations

import os
from pathlib import Path

from resources.settings import SettingsError

# The tag every ingesting run carries: its collection's base name.
COLLECTION_TAG = "ragpipe/collection"

# Telemetry off (air-gapped), no first-visit pop-up in the UI, and queued runs (UI, schedules,
# sensors) start one at a time per collection tag value: the collection, or with shards the
# collection and shard (``<alias>/<shard key>``), so the shards of a collection run in parallel
# and two runs of one shard never do. The ledger's writer lease, per collection and shard, also
# covers runs that bypass the queue or carry no such tag (the CLI's in-process runs, other
# instances, asset backfills launched from the asset graph).
DAGSTER_YAML = f"""\
telemetry:
  enabled: false
nux:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: {COLLECTION_TAG}
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


def ensure_dagster_home(home: Path) -> Path:
    """Create the instance folder with the current dagster.yaml, and point DAGSTER_HOME at it."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != DAGSTER_YAML:
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def ensure_data_dir(path: Path) -> Path:
    """Create the data directory, or name the path that cannot be used (a settings error)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(f"data directory {path} (RAGPIPE_DATA_DIR or --data-dir) cannot be created: "
                            f"{error.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SettingsError(f"data directory {path} (RAGPIPE_DATA_DIR or --data-dir) is not writable")
    return path
