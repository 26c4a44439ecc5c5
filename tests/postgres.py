"""A throwaway PostgreSQL server on loopback (Debian's postgresql), for the PostgreSQL path.

initdb into a temporary folder, start on a free port with the socket in that folder, stop and
delete at the end. PostgreSQL refuses to run as root: as root the server runs as `postgres`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.rtsp import free_port, start_on_free_port


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Postgres:
    def __init__(self, folder: Path) -> None:
        self.bin = postgres_bin()
        self.folder, self.port = folder, free_port()
        self.data = folder / "data"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True)

    def start(self) -> Postgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        start_on_free_port(self._started, "PostgreSQL", self.port, log=self.folder / "server.log")
        return self

    def _started(self, port: int) -> bool:
        """Whether the server listens on `port` (now self.port); False where it was taken meanwhile."""
        self.port = port
        log = self.folder / "server.log"
        said = log.read_text() if log.exists() else ""
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w",
                      "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
            return True
        except subprocess.CalledProcessError:
            if "Address already in use" not in log.read_text()[len(said):]:
                raise
            return False

    def new_database(self, name: str) -> str:
        """The URL of a new, empty database `name` on this server: a test of its own tables (a
        migration, processes creating them together) away from those the module's tests share."""
        from sqlalchemy import create_engine, text

        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")  # CREATE DATABASE runs outside a transaction
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


def postgres_folder(tmp_path_factory) -> Path:
    """A new folder postgres can reach when the server runs as that user (pytest's tmp is private to root)."""
    folder = Path(tmp_path_factory.mktemp("pg"))
    if os.geteuid() == 0:
        for parent in [folder, *folder.parents]:
            if parent == Path("/"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
    return folder


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is missing: the Makefile's postgres target installs Debian's postgresql")
    server = Postgres(postgres_folder(tmp_path_factory) / "server").start()
    yield server
    server.stop()
