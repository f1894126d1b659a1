"""A private PostgreSQL cluster for tests: Debian's server binaries, a temp data folder,
a Unix socket only (no TCP port), stopped when the test session ends."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path


def server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(*command: str) -> None:
    # initdb refuses to run as root; Debian's package creates the `postgres` user.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)


@contextmanager
def private_cluster():
    """Yield a SQLAlchemy URL of a fresh database on a throwaway cluster."""
    binaries = server_binaries()
    folder = Path(tempfile.mkdtemp(prefix="ragpipe-pg-"))
    data, socket_dir = folder / "data", folder / "socket"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (folder, socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
    try:
        _as_postgres(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
        _as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
                     "-o", f"-k {socket_dir} -c listen_addresses=''", "start")
        yield f"postgresql+psycopg2://postgres@/postgres?host={socket_dir}"
    finally:
        if (data / "postmaster.pid").exists():
            _as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)
