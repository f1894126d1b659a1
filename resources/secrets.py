"""Secrets given to resources as ``EnvVar``."""

from __future__ import annotations

from dagster import EnvVar


def secret_value(value: str | None) -> str | None:
    """The value of a field given as an ``EnvVar``. Dagster resolves it when it builds a run's
    resources, but the CLI, the sensor wiring and tests use resources as built, where the
    field still holds the variable's name."""
    return (value.get_value() or "") if isinstance(value, EnvVar) else value
