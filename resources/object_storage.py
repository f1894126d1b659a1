"""Where steps write: a local folder or shared object storage (Azure Blob / ADLS through adlfs,
or any fsspec location), as one kind of path for staging, step outputs and evaluation results."""

from __future__ import annotations

from dagster import ConfigurableIOManagerFactory, EnvVar, InitResourceContext
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from fsspec.utils import get_protocol
from pydantic import Field
from upath import UPath

from resources.secrets import secret_value

AZURE_PROTOCOLS = ("abfs", "abfss", "az")
# Locations a pod would keep to itself: its disk or its memory.
POD_LOCAL_PROTOCOLS = ("file", "local", "memory")


def is_pod_local(url: str) -> bool:
    """True for a folder (or an in-memory filesystem): not shared between pods."""
    return get_protocol(url) in POD_LOCAL_PROTOCOLS


def storage_path(url: str, connection_string: str | EnvVar | None = "") -> UPath:
    """``url`` as a path whatever holds it. Azure URLs authenticate with the connection string
    when one is given (Azurite, an account key), otherwise with the URL's account and
    ``DefaultAzureCredential`` (Workload Identity on AKS); other locations take no options."""
    if get_protocol(url) not in AZURE_PROTOCOLS:
        return UPath(url)
    connection_string = secret_value(connection_string)
    path = UPath(url, **({"connection_string": connection_string} if connection_string else {"anon": False}))
    if not (connection_string or path.storage_options.get("account_name")):
        raise ValueError(f"{url!r} names no storage account: use abfs://<container>@<account>.dfs.core.windows.net/"
                         "<prefix>, or give a connection string")
    return path


class ObjectStoreIOManager(ConfigurableIOManagerFactory):
    """Step outputs (the small manifests and reports assets return) pickled under ``root``, a
    folder or an object-store URL, by Dagster's own UPath IO manager: on shared storage a step in
    one pod reads what a step in another pod wrote."""

    root: str = Field(description="A folder or an fsspec URL, e.g. abfs://<container>@<account>.dfs.core.windows.net/p")
    connection_string: str = Field(default="", repr=False, description="Azure only; pass an EnvVar.")

    def create_io_manager(self, context: InitResourceContext) -> PickledObjectFilesystemIOManager:
        path = storage_path(self.root, self.connection_string)
        return PickledObjectFilesystemIOManager(base_dir=str(path), **path.storage_options)
