"""PostgreSQL from the machine's server binaries, with its data in the stack's state directory."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from pathlib import Path

from streamctl.errors import PreflightError, StartupError
from streamctl.net import host_port
from streamctl.runtimes.local.base import Launch, LocalService
from streamctl.waits import Check


def find_postgres_bin(setting: str = "") -> Path:
    """settings.postgres.bin_dir, then PATH, then pg_config --bindir, then /usr/lib/postgresql/*/bin."""
    if setting:
        directory = Path(setting)
        if (directory / "postgres").is_file() and (directory / "initdb").is_file():
            return directory
        raise PreflightError(f"postgres.bin_dir {setting} has no postgres and initdb binaries",
                             hint="point postgres.bin_dir at the directory holding initdb and postgres")
    candidates: list[Path] = []
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
            if out:
                candidates.append(Path(out))
        except (OSError, subprocess.TimeoutExpired):
            pass
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                      if Path(p).parent.name.isdigit() else 0, reverse=True)
    candidates += [Path(p) for p in versions]
    for directory in candidates:
        if (directory / "postgres").is_file() and (directory / "initdb").is_file():
            return directory
    raise PreflightError("PostgreSQL server binaries (initdb, postgres) not found",
                         hint="apt-get install postgresql (or set postgres.bin_dir)")


class Postgres(LocalService):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for the Flink sink's connections to close

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    def bin(self) -> Path:
        return find_postgres_bin(self.ctx.settings.postgres.bin_dir)

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.ctx.own(self.dir)
        if (self.data_dir / "PG_VERSION").is_file():
            return
        pwfile = self.dir / ".initdb-password"
        pwfile.unlink(missing_ok=True)
        # created private, then written: never readable by others, not even for an instant
        with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(self.ctx.secrets.postgres_password + "\n")
        self.ctx.own(pwfile)
        run_as = self.ctx.run_as
        try:
            result = subprocess.run(
                [str(self.bin() / "initdb"), "-D", str(self.data_dir), "-U", self.ctx.settings.postgres.user,
                 f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"],
                capture_output=True, text=True, cwd=self.dir,
                user=run_as.uid if run_as else None, group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None, env={**os.environ, "LC_ALL": "C"},
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StartupError("initdb failed for postgres", details=(result.stdout + result.stderr)[-2000:],
                               hint=f"see the message above; data directory {self.data_dir}")

    def launch(self) -> Launch:
        s = self.ctx.settings
        argv = (
            str(self.bin() / "postgres"), "-D", str(self.data_dir),
            "-c", f"listen_addresses={self.ctx.host}", "-c", f"port={s.ports.postgres}",
            "-c", f"unix_socket_directories={self.socket_dir}",
            "-c", "max_connections=50", "-c", "shared_buffers=64MB", "-c", "TimeZone=UTC",
            "-c", "log_timezone=UTC", "-c", "logging_collector=off",
        )
        return Launch(argv, {**self.ctx.base_env, "LC_ALL": "C"}, self.dir, self.ctx.run_as)

    def dsn(self, database: str | None = None, with_password: bool = True) -> str:
        s = self.ctx.settings
        password = f":{self.ctx.secrets.postgres_password}" if with_password else ""
        return f"postgresql://{s.postgres.user}{password}@{host_port(self.ctx.host, s.ports.postgres)}/{database or 'postgres'}"

    def ready(self) -> Check:
        import psycopg2

        try:
            psycopg2.connect(self.dsn(), connect_timeout=2).close()
            return True, "accepting connections"
        except psycopg2.OperationalError as exc:
            return False, str(exc).strip().splitlines()[0] if str(exc).strip() else "not accepting connections"

    def endpoint(self) -> str:
        return self.dsn(self.ctx.settings.postgres.database, with_password=False)
