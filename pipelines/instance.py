"""The Dagster instance of the embedded default: SQLite storage under the data directory."""

from __future__ import annotations

import os
from pathlib import Path

# Telemetry off (air-gapped) and no first-visit pop-up in the UI.
DAGSTER_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
"""


def ensure_dagster_home(home: Path) -> Path:
    """Create the instance folder with its dagster.yaml, and point DAGSTER_HOME at it."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
