"""Azure Blob Storage as a document source: one container, optionally narrowed to prefixes.

The URI helpers and the metadata normalisation are pure, so a sensor can map Blob events to
the same ``az://`` URIs without importing the SDK's I/O paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from core.types import SourceItem, UnlistedPart
from resources.secrets import secret_value
from resources.sources import SourceUnavailableError

SCHEME = "az://"
# Each download request fetches at most this much, so hashing a large blob stays bounded.
_DOWNLOAD_CHUNK = 4 << 20
_METADATA_FIELDS = ("title", "author", "language")
_ACL_SEPARATORS = re.compile(r"[,;]")


def blob_uri(account: str, container: str, name: str) -> str:
    """``az://<account>/<container>/<name>``, the blob name as is (account and container names
    cannot hold a slash, so the name is everything after the second one)."""
    return f"{SCHEME}{account}/{container}/{name}"


def parse_blob_uri(uri: str) -> tuple[str, str, str]:
    """(account, container, blob name) of an ``az://`` URI; ValueError for any other URI."""
    account, _, rest = uri.removeprefix(SCHEME).partition("/")
    container, _, name = rest.partition("/")
    if not uri.startswith(SCHEME) or not (account and container and name):
        raise ValueError(f"{uri} is not a blob URI of the form az://<account>/<container>/<blob name>")
    return account, container, name


def parse_acl(value: str) -> list[str]:
    """ACL groups from a metadata value: a JSON list, or names separated by commas or semicolons.
    A value that is neither is split leniently rather than dropped, so no group is lost."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    parts = parsed if isinstance(parsed, list) else _ACL_SEPARATORS.split(value)
    groups = (str(part).strip().strip("[]\"' ") for part in parts)
    return list(dict.fromkeys(group for group in groups if group))


def blob_metadata(raw: Mapping[str, str] | None, acl_key: str) -> dict[str, Any]:
    """A blob's metadata as document metadata: ``title``, ``author``, ``language`` and ``acl``,
    each only when the blob has it (keys compare case-insensitively, as Azure's do)."""
    lowered = {key.lower(): value for key, value in (raw or {}).items()}
    metadata: dict[str, Any] = {key: lowered[key].strip() for key in _METADATA_FIELDS if lowered.get(key, "").strip()}
    if acl_key.lower() in lowered:
        metadata["acl"] = parse_acl(lowered[acl_key.lower()])
    return metadata


def listing_prefixes(prefixes: list[str]) -> list[str]:
    """The prefixes to list, in name order, without those another prefix already covers (so
    no blob is listed twice); the whole container when none is given."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)) or [""]:
        if not any(prefix.startswith(other) for other in kept):
            kept.append(prefix)
    return kept


@dataclass
class SourceStats:
    """What the source asked of Blob Storage: listing pages, single-blob lookups, downloads."""

    list_calls: int = 0
    lookups: int = 0
    downloads: int = 0
    bytes_read: int = 0


class AzureBlobSource(ConfigurableResource):
    """Blobs of one container, identified by ``az://<account>/<container>/<blob>`` URIs.

    The version is the blob's etag. Authentication: the connection string when set, otherwise
    ``DefaultAzureCredential`` (Workload Identity on AKS, a managed identity, ``az login``).
    Transient errors are retried by the SDK's exponential retry policy.
    """

    account_url: str = Field(default="", description="https://<account>.blob.core.windows.net")
    container: str
    prefixes: list[str] = Field(default_factory=list, description="Blob name prefixes to index; empty: all.")
    connection_string: str = Field(default="", repr=False,
                                   description="Used instead of account_url auth when set; pass an EnvVar.")
    acl_metadata_key: str = Field(default="acl", description="Blob metadata key holding the ACL groups.")
    list_page_size: int = Field(default=5000, description="Blobs per listing request (the service's maximum).")
    retry_total: int = 3
    retry_initial_backoff_s: float = 15.0
    retry_increment_base: float = 3.0
    retry_jitter_s: float = 3.0
    _client: Any = PrivateAttr(default=None)
    _credential: Any = PrivateAttr(default=None)
    _stats: SourceStats = PrivateAttr(default_factory=SourceStats)

    @property
    def stats(self) -> SourceStats:
        return self._stats

    def _container_client(self):
        """The container's client, built once; it is not connected until the first request."""
        if self._client is None:
            from azure.storage.blob import BlobServiceClient, ExponentialRetry

            options = {
                "retry_policy": ExponentialRetry(
                    initial_backoff=self.retry_initial_backoff_s, increment_base=self.retry_increment_base,
                    retry_total=self.retry_total, random_jitter_range=self.retry_jitter_s),
                "max_single_get_size": _DOWNLOAD_CHUNK,
                "max_chunk_get_size": _DOWNLOAD_CHUNK,
            }
            if self.connection_string:
                try:
                    service = BlobServiceClient.from_connection_string(secret_value(self.connection_string), **options)
                except ValueError:
                    raise SourceUnavailableError(
                        "the Blob Storage connection string (RAGPIPE_BLOB_CONNECTION_STRING) is malformed") from None
            elif self.account_url:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
                try:
                    service = BlobServiceClient(self.account_url, credential=credential, **options)
                except ValueError as error:  # an http:// URL: the SDK sends tokens over HTTPS only
                    credential.close()
                    raise SourceUnavailableError(f"account URL {self.account_url!r}: {error}") from None
                self._credential = credential
            else:
                raise SourceUnavailableError(
                    "no Blob Storage account configured: set RAGPIPE_BLOB_ACCOUNT_URL (authenticated by "
                    "DefaultAzureCredential) or RAGPIPE_BLOB_CONNECTION_STRING")
            if not service.account_name:
                raise SourceUnavailableError(
                    f"cannot tell the storage account from {self.account_url!r}; "
                    "use https://<account>.blob.core.windows.net")
            self._client = service.get_container_client(self.container)
        return self._client

    def close(self) -> None:
        for handle in (self._client, self._credential):
            if handle is not None:
                handle.close()
        self._client = self._credential = None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        stats = self._stats
        context.log.info(f"blob source {self._root_uri()}: {stats.list_calls} listing pages, {stats.lookups} "
                         f"lookups, {stats.downloads} downloads, {stats.bytes_read:,} bytes read")
        self.close()

    def uri_prefixes(self) -> list[str]:
        """The URIs of the listed prefixes (``az://<account>/<container>/<prefix>``): what this
        source covers, for matching Blob events."""
        account = self._container_client().account_name
        return [blob_uri(account, self.container, prefix) for prefix in listing_prefixes(self.prefixes)]

    def _root_uri(self) -> str:
        return blob_uri(self._container_client().account_name, self.container, "")

    @contextlib.contextmanager
    def _unavailable_on_source_errors(self) -> Iterator[None]:
        """A missing container, refused credentials or an unreachable endpoint: the whole source
        is unavailable, which must stop the run rather than read as missing documents. The
        message names the endpoint and container, never the SDK's text (request URLs may carry
        a SAS token)."""
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            yield
        except AzureError as error:
            if isinstance(error, ResourceNotFoundError) and error.error_code == "ContainerNotFound":
                raise SourceUnavailableError(
                    f"container {self.container!r} does not exist in {self._endpoint()}; create it or set "
                    "RAGPIPE_BLOB_CONTAINER") from None
            if isinstance(error, ClientAuthenticationError) or getattr(error, "status_code", None) in (401, 403):
                raise SourceUnavailableError(
                    f"{self._endpoint()} refused access to container {self.container!r} ({_reason(error)}); check "
                    "RAGPIPE_BLOB_CONNECTION_STRING, or that the workload identity has the Storage Blob Data "
                    "Reader role on the container") from None
            if isinstance(error, ServiceRequestError | ServiceResponseError):
                raise SourceUnavailableError(f"cannot reach {self._endpoint()} ({_reason(error)})") from None
            raise

    def _endpoint(self) -> str:
        client = self._container_client()
        return f"{client.scheme}://{client.primary_hostname}"

    def list_items(self) -> Iterator[SourceItem | UnlistedPart]:
        """Every blob under the prefixes, in name order. The container is checked first (missing,
        refused or unreachable: ``SourceUnavailableError``); a prefix whose listing then fails part
        way, after the SDK's retries, is reported as an ``UnlistedPart`` and the next one listed."""
        from azure.core.exceptions import AzureError

        client = self._container_client()
        with self._unavailable_on_source_errors():
            client.get_container_properties()
        for prefix in listing_prefixes(self.prefixes):
            pages = client.list_blobs(name_starts_with=prefix or None, include=["metadata"],
                                      results_per_page=self.list_page_size).by_page()
            try:
                for page in pages:
                    self._stats.list_calls += 1
                    yield from (self._item(blob) for blob in page if not _is_folder(blob))
            except AzureError as error:
                yield UnlistedPart(blob_uri(client.account_name, self.container, prefix), _reason(error))

    def item(self, uri: str) -> SourceItem | None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._blob_client(uri)
        self._stats.lookups += 1
        with self._unavailable_on_source_errors():
            try:
                properties = blob.get_blob_properties()
            except ResourceNotFoundError as error:
                if error.error_code == "ContainerNotFound":
                    raise
                return None
        return None if _is_folder(properties) else self._item(properties)

    def read_bytes(self, uri: str) -> bytes:
        data = self._download(uri).readall()
        self._stats.bytes_read += len(data)
        return data

    def sha256(self, uri: str) -> str:
        """Stream the blob through sha256 chunk by chunk, so a large blob costs no memory."""
        digest = hashlib.sha256()
        for chunk in self._download(uri).chunks():
            self._stats.bytes_read += len(chunk)
            digest.update(chunk)
        return digest.hexdigest()

    def _download(self, uri: str):
        blob = self._blob_client(uri)
        self._stats.downloads += 1
        with self._unavailable_on_source_errors():
            return blob.download_blob()

    def _blob_client(self, uri: str):
        """The client of the blob a URI names, which must lie in this container under one of the
        prefixes: run config names URIs, and must not reach blobs outside the corpus."""
        _, _, name = parse_blob_uri(uri)
        scope = self.uri_prefixes()
        if not uri.startswith(tuple(scope)):
            raise ValueError(f"{uri} is not a blob under {' or '.join(scope)}")
        return self._container_client().get_blob_client(name)

    def _item(self, blob) -> SourceItem:
        return SourceItem(
            uri=blob_uri(self._container_client().account_name, self.container, blob.name),
            version=blob.etag.strip('"'),
            size=blob.size,
            metadata=blob_metadata(blob.metadata, self.acl_metadata_key),
        )


def _is_folder(blob) -> bool:
    """A directory marker of a hierarchical-namespace (ADLS Gen2) account, not a document."""
    return (blob.metadata or {}).get("hdi_isfolder") == "true"


def _reason(error: Exception) -> str:
    """The error's type and service error code or status, never its message (request URLs)."""
    detail = getattr(error, "error_code", None) or getattr(error, "status_code", None)
    return f"{type(error).__name__}: {getattr(detail, 'value', detail)}" if detail else type(error).__name__
