"""A Flink 1.20 session cluster from the distribution inside the apache-flink Python package.

streamctl keeps its own config directory and lib directory in the stack's state directory (the
package's files are never changed): lib/ links the package's jars plus the locked connectors. The
local runtime's JobManager and TaskManagers run from it; every runtime's job client takes its
configuration from it (flink/gateway.py links the same jars for the client's JVM).
"""

from __future__ import annotations

import importlib.util
import shutil
import threading
from pathlib import Path

import yaml

from streamctl.artifacts.fetch import cached_file
from streamctl.artifacts.lock import Role, read_lock
from streamctl.errors import PreflightError
from streamctl.flink import config as job_config
from streamctl.net import http_url
from streamctl.paths import LOCK_FILE
from streamctl.waits import http_json


def flink_home() -> Path:
    spec = importlib.util.find_spec("pyflink")
    if spec is None or not spec.submodule_search_locations:
        raise PreflightError("the apache-flink package is not installed", hint="run `make setup`")
    home = Path(list(spec.submodule_search_locations)[0])
    if not (home / "bin" / "flink").is_file() or not (home / "lib").is_dir():
        raise PreflightError(f"{home} holds no Flink distribution (bin/, lib/)", hint="reinstall apache-flink")
    return home


def _flatten(data: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


_prepare_lock = threading.Lock()
_prepared: set[Path] = set()  # cluster directories written by this process (JM and TM start in parallel)


class FlinkCluster:
    """Files and settings shared by the JobManager, the TaskManager and the job submitter."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.dir = ctx.stack_dir / "flink"
        self.home = flink_home()

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    @property
    def lib_dir(self) -> Path:
        return self.dir / "lib"

    @property
    def rest_url(self) -> str:
        return http_url(self.ctx.host, self.ctx.settings.ports.flink_rest)

    def config(self) -> dict[str, object]:
        s = self.ctx.settings
        host = self.ctx.host
        package_config = yaml.safe_load((self.home / "conf" / "config.yaml").read_text()) or {}
        flat = _flatten(package_config)
        # Keep the package's JVM options (the --add-opens Java 17 needs); pin the JVMs to UTC so the
        # JDBC sink writes window bounds as UTC whatever the machine's zone.
        java_opts = f"{flat.get('env.java.opts.all', '')} -Duser.timezone=UTC".strip()
        flat.update({
            "env.java.opts.all": java_opts,
            "env.java.home": str(self.ctx.java.home),
            # The JobManager coordinates; no record passes through it: C1 alone made it ready in 11.5-14.2 s
            # instead of 19.6 s during `up`, and halved its idle CPU (4.4 -> 2.2% of a core).
            "env.java.opts.jobmanager": "-XX:TieredStopAtLevel=1",
            "env.log.dir": str(self.dir / "log"),
            "env.pid.dir": str(self.dir / "run"),
            "io.tmp.dirs": str(self.dir / "tmp"),
            "jobmanager.rpc.address": host,
            "jobmanager.rpc.port": s.ports.flink_rpc,
            "jobmanager.bind-host": host,
            "jobmanager.memory.process.size": f"{s.flink.jobmanager_memory_mb}m",
            "taskmanager.host": host,
            "taskmanager.bind-host": host,
            "taskmanager.numberOfTaskSlots": s.flink.slots(),
            "taskmanager.memory.process.size": f"{s.flink.taskmanager_memory_mb}m",
            "taskmanager.memory.managed.fraction": job_config.TASKMANAGER_MANAGED_FRACTION,
            "metrics.fetcher.update-interval": job_config.METRICS_FETCH_INTERVAL_MS,
            "parallelism.default": s.flink.parallelism,
            "rest.address": host,
            "rest.bind-address": host,
            "rest.port": s.ports.flink_rest,
            "blob.server.port": "0",
            "state.checkpoints.dir": (self.dir / "checkpoints").as_uri(),
            "state.savepoints.dir": (self.dir / "savepoints").as_uri(),
            "state.checkpoints.num-retained": 2,
            "restart-strategy.type": "exponential-delay",
            "web.submit.enable": False,
            "web.cancel.enable": True,
        })
        return flat

    def prepare(self) -> None:
        with _prepare_lock:
            if self.dir not in _prepared:
                self._write_files()
                _prepared.add(self.dir)

    def _write_files(self) -> None:
        for sub in ("log", "run", "tmp", "checkpoints", "savepoints"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        conf = fresh_dir(self.conf_dir)
        for item in (self.home / "conf").iterdir():
            if item.name != "config.yaml" and item.is_file():
                shutil.copy2(item, conf / item.name)
        (conf / "config.yaml").write_text(yaml.safe_dump(self.config(), sort_keys=True, width=10_000))
        lib = fresh_dir(self.lib_dir)
        for jar in self.lib_jars():
            (lib / jar.name).symlink_to(jar)

    def lib_jars(self) -> list[Path]:
        """What lib/ links: the package's jars plus the locked connectors."""
        return [*sorted((self.home / "lib").glob("*.jar")),
                *(cached_file(self.ctx.settings.cache_dir, artifact)
                  for artifact in read_lock(LOCK_FILE).by_role(Role.FLINK_CONNECTOR))]

    def env(self) -> dict[str, str]:
        env = dict(self.ctx.base_env)
        env.update({
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LIB_DIR": str(self.lib_dir),
            "FLINK_LOG_DIR": str(self.dir / "log"),
            "JAVA_HOME": str(self.ctx.java.home),
        })
        return env

    def taskmanager_ids(self) -> set[str]:
        """The TaskManagers the JobManager lists now (a dead one stays until its heartbeat fails)."""
        try:
            status, body = http_json(f"{self.rest_url}/taskmanagers", 2)
        except (OSError, ValueError):
            return set()
        return {tm.get("id") for tm in body.get("taskmanagers", [])} if status == 200 else set()

    def overview(self) -> dict | None:
        try:
            status, body = http_json(f"{self.rest_url}/overview", 2)
        except (OSError, ValueError):
            return None
        return body if status == 200 else None
