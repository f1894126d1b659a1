"""The Dagster code location: definitions, jobs, profiles and the ragpipe CLI."""

from resources import offline as _offline  # noqa: F401  (air-gap defaults before anything else)
