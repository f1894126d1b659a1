"""Azurite, Microsoft's Azure Storage emulator (npm, pinned in tests/node), on loopback: a real
Blob and Queue service for the tests and benchmarks. `make test` installs it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NODE_TOOLS = Path(__file__).resolve().parent / "node"
AZURITE = NODE_TOOLS / "node_modules" / ".bin" / "azurite"
# Azurite's documented development account: a public, well-known key, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Azurite:
    blob_port: int
    queue_port: int

    @property
    def blob_url(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_url(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.blob_url};QueueEndpoint={self.queue_url};")


def installed() -> bool:
    return AZURITE.exists() and shutil.which("node") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, deadline: float) -> None:
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if process.poll() is not None:
            raise RuntimeError(f"azurite exited with {process.returncode}: {process.stderr.read().decode()[-500:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"azurite did not listen on port {port} within 60 s")
        time.sleep(0.2)


@contextlib.contextmanager
def running_azurite(workdir: Path) -> Iterator[Azurite]:
    """Azurite's Blob and Queue services on free loopback ports, data kept in memory; its
    debug files go to ``workdir``, which is also its working directory."""
    ports = Azurite(_free_port(), _free_port())
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [str(AZURITE), "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
         "--blobHost", "127.0.0.1", "--blobPort", str(ports.blob_port),
         "--queueHost", "127.0.0.1", "--queuePort", str(ports.queue_port),
         "--tableHost", "127.0.0.1", "--tablePort", str(_free_port())],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        _wait_for(ports.blob_port, process, deadline)
        _wait_for(ports.queue_port, process, deadline)
        yield ports
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def counted_sdk_calls() -> Iterator[Counter]:
    """Counts the Blob SDK's listing calls (``list_blobs``) and downloads (``download_blob``, and
    ``download_blob:<name>`` per blob), below the source resource, while the block runs."""
    from azure.storage.blob import BlobClient, ContainerClient

    calls: Counter = Counter()
    list_blobs, download_blob = ContainerClient.list_blobs, BlobClient.download_blob

    def listing(self, *args, **kwargs):
        calls["list_blobs"] += 1
        return list_blobs(self, *args, **kwargs)

    def download(self, *args, **kwargs):
        calls["download_blob"] += 1
        calls[f"download_blob:{self.blob_name}"] += 1
        return download_blob(self, *args, **kwargs)

    ContainerClient.list_blobs, BlobClient.download_blob = listing, download
    try:
        yield calls
    finally:
        ContainerClient.list_blobs, BlobClient.download_blob = list_blobs, download_blob
