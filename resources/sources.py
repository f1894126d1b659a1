"""Document sources: list what exists and read its bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from dagster import ConfigurableResource

from core.types import SourceItem

_HASH_BLOCK = 1 << 20


class DocumentSource(Protocol):
    def list_items(self) -> Iterator[SourceItem]: ...

    def read_bytes(self, uri: str) -> bytes: ...

    def sha256(self, uri: str) -> str: ...


class SourceUnavailableError(RuntimeError):
    """The source cannot be listed; nothing may be treated as deleted."""


class LocalFolderSource(ConfigurableResource):
    """Documents under a local folder, identified by ``file://`` URIs.

    Hidden files and folders (``.git``, ``.DS_Store``) are skipped. The version is
    mtime and size, the cheap change marker; the content hash is the real identity.
    """

    root: str

    def _root(self) -> Path:
        root = Path(self.root).expanduser().resolve()
        if not root.is_dir():
            raise SourceUnavailableError(
                f"source folder {root} does not exist or is not a folder; "
                "set --source / RAGPIPE_SOURCE_DIR to the corpus folder"
            )
        return root

    def list_items(self) -> Iterator[SourceItem]:
        root = self._root()
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts) or not path.is_file():
                continue
            stat = path.stat()
            yield SourceItem(
                uri=path.as_uri(),
                version=f"{stat.st_mtime_ns}-{stat.st_size}",
                size=stat.st_size,
            )

    def _path(self, uri: str) -> Path:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise ValueError(f"not a file:// URI: {uri}")
        return Path(unquote(parsed.path))

    def read_bytes(self, uri: str) -> bytes:
        return self._path(uri).read_bytes()

    def sha256(self, uri: str) -> str:
        """Stream the file through sha256, so an oversized file costs no memory."""
        digest = hashlib.sha256()
        with self._path(uri).open("rb") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
        return digest.hexdigest()
