"""Shared fixtures: a generated corpus in every basic format and isolated settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resources import offline  # noqa: F401  (air-gap defaults before library imports)
from pipelines.cli import run_ingest
from pipelines.definitions import build_resources
from pipelines.settings import Settings
from tests.corpus import write_corpus
from tests.postgres import private_cluster, server_binaries

@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


# Tests that must hold on every vector store take the store as an indirect parameter.
EVERY_STORE = pytest.mark.parametrize("vector_backend", ["qdrant", "qdrant_edge", "azure_search"], indirect=True)


@pytest.fixture
def vector_backend(request) -> str:
    return getattr(request, "param", "qdrant")


@pytest.fixture
def settings(tmp_path: Path, corpus: Path, vector_backend: str, request) -> Settings:
    """The embedded default; with ``vector_backend`` qdrant_edge, the index lives in Qdrant Edge, and
    with azure_search in the Azure AI Search contract-test server, instead of Qdrant local mode."""
    return Settings(data_dir=tmp_path / "data", source_dir=corpus, **store_settings(vector_backend, request))


def store_settings(vector_backend: str, request) -> dict:
    """The Settings fields that make ``vector_backend`` the store."""
    if vector_backend == "qdrant_edge":
        return {"embedded_store": "qdrant-edge"}
    if vector_backend == "azure_search":
        return {"azure_search_endpoint": request.getfixturevalue("azure_search").endpoint}
    return {}


@pytest.fixture
def azure_search(monkeypatch):
    """An Azure AI Search contract-test server (the service cannot run here), its admin key in
    the environment as the pipeline reads it."""
    from pipelines.definitions import AZURE_SEARCH_KEY_ENV
    from tests.azure_search_server import AzureSearchContractServer

    with AzureSearchContractServer() as server:
        monkeypatch.setenv(AZURE_SEARCH_KEY_ENV, server.admin_key)
        yield server


@pytest.fixture
def ingest(settings: Settings):
    """Run the ingest job (the CLI's code path) and return its summary."""

    def run(current: Settings = settings, **resource_overrides):
        return run_ingest(current, resource_overrides or None)

    return run


@pytest.fixture
def index_state(settings: Settings):
    """The collection's point ids, and the ids the ledger says it should hold."""
    from assets.ingestion.documents import point_id

    def state(current: Settings = settings, version: str | None = None):
        resources = build_resources(current)
        store, ledger = resources["vector_store"], resources["ledger"]
        try:
            version = version or next(iter(ledger.status_counts()))
            collection = f"{current.collection}__{version}"
            expected = {
                point_id(row.source, row.indexed_doc_id, index)
                for row in ledger.rows(version).values()
                if row.indexed_doc_id
                for index in range(row.chunk_count)
            }
            return store.point_ids(collection), expected, ledger.rows(version)
        finally:
            store.close()

    return state


@pytest.fixture(scope="session")
def postgres_cluster():
    """A real PostgreSQL (Debian's server package, which .ci/run installs)."""
    if server_binaries() is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    with private_cluster() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_cluster):
    """A fresh, empty database on the session's cluster."""
    import uuid

    import sqlalchemy as sa

    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(postgres_cluster, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return postgres_cluster.replace("/postgres?", f"/{name}?")


def pytest_sessionfinish(session, exitstatus):
    """In CI every skip is a failure: the services a test needs are installed by `make test`,
    so a skip there means an install step is missing, not that the test may be left out."""
    if os.environ.get("CI") != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI=true: {len(skipped)} test(s) skipped; every test must run in CI", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def data_url(azurite, monkeypatch) -> str:
    """RAGPIPE_DATA_URL's shared storage: a fresh container on Azurite (created by the first write),
    named as on Azure, its connection string in the environment as the pipeline reads it."""
    import uuid

    from pipelines.definitions import DATA_CONNECTION_STRING_ENV
    from tests.azurite import ACCOUNT

    monkeypatch.setenv(DATA_CONNECTION_STRING_ENV, azurite.connection_string)
    return f"abfs://data-{uuid.uuid4().hex[:12]}@{ACCOUNT}.dfs.core.windows.net/ragpipe"


def blob_names(azurite, url: str) -> list[str]:
    """The blobs under an abfs://<container>@<account host>/<prefix> URL, listed by the Blob SDK
    (not through fsspec)."""
    from azure.storage.blob import ContainerClient

    container, _, prefix = url.removeprefix("abfs://").partition("/")
    container = container.partition("@")[0]
    with ContainerClient.from_connection_string(azurite.connection_string, container) as client:
        return sorted(client.list_blob_names(name_starts_with=prefix + "/" if prefix else None))


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A real Azure Blob and Queue service: Azurite from tests/node, which `make test` installs."""
    from tests.azurite import installed, running_azurite

    if not installed():
        pytest.skip("Azurite not installed (make node-tools: npm ci in tests/node)")
    with running_azurite(tmp_path_factory.mktemp("azurite")) as service:
        yield service
