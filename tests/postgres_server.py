"""A real PostgreSQL server for a test (the sweep's database storage): started in a temp
folder on a free port, stopped after the test."""

import os
import subprocess
from pathlib import Path

import pytest


def _postgres_binaries():
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists():
            return folder
    return None


def postgres_server():
    """A PostgreSQL server of our own in a temp folder: yields its URL (a generator for
    a fixture: ``yield from postgres_server()``); skips the test where the server's
    binaries are not installed."""
    import shutil
    import socket
    import tempfile

    binaries = _postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed here "
                    "(Debian: apt-get install postgresql)")
    # Not under pytest's tmp_path: as root, the server runs as another user, who must be
    # able to reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="kbuilder-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as nobody
        if shutil.which("runuser") is None:
            shutil.rmtree(folder)
            pytest.skip("running as root without runuser: cannot start PostgreSQL as "
                        "another user")
        os.chown(folder, 65534, 65534)
        prefix = ["runuser", "-u", "nobody", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    try:
        subprocess.run([*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "kb",
                        "--auth=trust"], check=True, capture_output=True)
        subprocess.run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l",
                        str(folder / "log"), "-o", f"-p {port} -k {folder} -c "
                        "listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
        yield f"postgresql+psycopg2://kb@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
