"""Document sources: list what exists and read its bytes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from core.access import AclRules, acl_for, parse_acl_mapping
from core.types import SourceItem, UnlistedPart

_HASH_BLOCK = 1 << 20


class DocumentSource(Protocol):
    """Where documents come from. ``list_items`` serves full reconciles; ``item`` looks one
    named document up without listing or reading it (targeted runs, the version check)."""

    def list_items(self) -> Iterator[SourceItem | UnlistedPart]: ...

    def item(self, uri: str) -> SourceItem | None:
        """The document's current listing entry, or None when it no longer exists."""

    def read_bytes(self, uri: str) -> bytes: ...

    def sha256(self, uri: str) -> str: ...


class SourceUnavailableError(RuntimeError):
    """The source cannot be listed; nothing may be treated as deleted."""


class LocalFolderSource(ConfigurableResource):
    """Documents under a local folder, identified by ``file://`` URIs.

    Hidden files and folders (``.git``, ``.DS_Store``) are skipped. The version is
    mtime and size, the cheap change marker; the content hash is the real identity.
    ``acl_file`` names a YAML mapping of globs (relative to the folder) to groups: each file's
    ``acl`` is the groups of the last pattern matching it, as item metadata, so an edit of the
    mapping alone re-indexes the payloads of the files whose acl it changes.
    """

    root: str
    acl_file: str = ""
    _acl_rules: AclRules | None = PrivateAttr(default=None)

    def _root(self) -> Path:
        root = Path(self.root).expanduser().resolve()
        if not root.is_dir():
            raise SourceUnavailableError(
                f"source folder {root} does not exist or is not a folder; "
                "set --source / RAGPIPE_SOURCE_DIR to the corpus folder"
            )
        return root

    def _mapping(self) -> Path | None:
        return Path(self.acl_file).expanduser().resolve() if self.acl_file else None

    def _rules(self) -> AclRules:
        """The mapping file's rules, read once per resource instance (a run gets its own);
        one that cannot be read or parsed stops the run: indexing without ACLs would leak."""
        if self._acl_rules is None and self.acl_file:
            try:
                self._acl_rules = parse_acl_mapping(self._mapping().read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as error:
                reason = error.strerror if isinstance(error, OSError) and error.strerror else error
                raise SourceUnavailableError(
                    f"ACL mapping file {self._mapping()}: {reason}; nothing is indexed without its ACLs"
                ) from None
        return self._acl_rules or []

    def _item(self, root: Path, path: Path, stat: os.stat_result) -> SourceItem:
        acl = acl_for(path.relative_to(root).as_posix(), self._rules())
        metadata: dict[str, Any] = {"acl": acl} if acl else {}
        return SourceItem(uri=path.as_uri(), version=f"{stat.st_mtime_ns}-{stat.st_size}", size=stat.st_size,
                          metadata=metadata)

    def list_items(self) -> Iterator[SourceItem | UnlistedPart]:
        """Every file, folder by folder in name order; a folder or file that cannot be read
        is reported as an ``UnlistedPart`` instead of being skipped in silence. The ACL
        mapping file is not a document, even when it lies in the folder."""
        root, mapping = self._root(), self._mapping()
        self._rules()
        unlisted: list[UnlistedPart] = []

        def report(error: OSError) -> None:
            unlisted.append(UnlistedPart(Path(error.filename).as_uri() + "/", _reason(error)))

        for folder, subfolders, files in os.walk(root, onerror=report):
            yield from unlisted
            unlisted.clear()
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(name for name in files if not name.startswith(".")):
                path = Path(folder, name)
                if path == mapping:
                    continue
                try:
                    stat = path.stat()
                except OSError as error:
                    yield UnlistedPart(path.as_uri(), _reason(error))
                    continue
                if path.is_file():
                    yield self._item(root, path, stat)
        yield from unlisted

    def item(self, uri: str) -> SourceItem | None:
        path = self._path(uri)
        self._rules()
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        if path == self._mapping():
            return None
        return self._item(self._root(), path, stat) if path.is_file() else None

    def _path(self, uri: str) -> Path:
        """The file a URI names, which must lie under the root: run config names URIs, and
        must not reach files outside the corpus."""
        parsed = urlparse(uri)
        path = Path(unquote(parsed.path))
        if parsed.scheme != "file" or not path.is_relative_to(self._root()) or ".." in path.parts:
            raise ValueError(f"{uri} is not a file:// URI under the source folder {self._root()}")
        return path

    def read_bytes(self, uri: str) -> bytes:
        return self._path(uri).read_bytes()

    def sha256(self, uri: str) -> str:
        """Stream the file through sha256, so an oversized file costs no memory."""
        digest = hashlib.sha256()
        with self._path(uri).open("rb") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
        return digest.hexdigest()


def _reason(error: OSError) -> str:
    return f"{type(error).__name__}: {error.strerror or error}"
