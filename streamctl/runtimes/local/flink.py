"""The local runtime's Flink processes: a JobManager and TaskManagers of the cluster that
streamctl/flink/cluster.py prepares from the apache-flink package."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from streamctl.flink.cluster import FlinkCluster
from streamctl.runtimes.local.base import JVM_START_TIMEOUT_S, Launch, LocalService
from streamctl.waits import Check


class _FlinkProcess(LocalService):
    """A JobManager or TaskManager: the distribution's `<script> start-foreground` (exec's the JVM)."""

    script = ""
    start_timeout_s = JVM_START_TIMEOUT_S

    def __init__(self, ctx, spec=None):
        super().__init__(ctx, spec)
        self.cluster = FlinkCluster(ctx)

    def prepare(self) -> None:
        self.cluster.prepare()

    def launch(self) -> Launch:
        env = self.cluster.env()
        if self.spec.instance:  # one of several TaskManagers: Flink's own log files apart
            env["FLINK_LOG_DIR"] = str(self.cluster.dir / "log" / self.name)
            Path(env["FLINK_LOG_DIR"]).mkdir(parents=True, exist_ok=True)
        return Launch(("bash", str(self.cluster.home / "bin" / self.script), "start-foreground",
                       *self.dynamic_properties()), env, self.cluster.dir)

    def dynamic_properties(self) -> list[str]:
        return []


class FlinkJobManager(_FlinkProcess):
    name = "flink-jobmanager"
    script = "jobmanager.sh"

    def answered(self, status: int, body) -> Check:
        if status != 200:
            return False, f"{self.cluster.rest_url} not answering"
        return True, f"Flink {body.get('flink-version')} REST up"

    def unanswered(self, url: str, exc: Exception) -> Check:
        return False, f"{self.cluster.rest_url} not answering"

    def endpoint(self) -> str:
        return self.cluster.rest_url


class FlinkTaskManager(_FlinkProcess):
    name = "flink-taskmanager"
    script = "taskmanager.sh"

    @property
    def _resource_id_file(self) -> Path:
        return self.cluster.dir / f"{self.name}.resource-id"

    def dynamic_properties(self) -> list[str]:
        # An id of this launch's own: after a kill -9 the JobManager lists the dead TaskManager until its
        # heartbeat fails, and counting TaskManagers would call the new one registered before it is.
        # With an id set, Flink keeps the working directory tm_<id> (job jars, RocksDB's library) unless it
        # ends with success, which a SIGTERM is not: the earlier launches' are removed here, where this
        # TaskManager is not running.
        for left in (self.cluster.dir / "tmp").glob(f"tm_{self.name}-*"):
            shutil.rmtree(left, ignore_errors=True)
        resource_id = f"{self.name}-{uuid.uuid4().hex[:8]}"
        self._resource_id_file.write_text(resource_id)
        return [f"-Dtaskmanager.resource-id={resource_id}"]

    def ready(self) -> Check:
        overview = self.cluster.overview()
        if overview is None:
            return False, "JobManager not answering"
        own_id = self._resource_id_file.read_text().strip() if self._resource_id_file.is_file() else None
        if own_id is not None and own_id not in self.cluster.taskmanager_ids():
            return False, f"{own_id} not registered with the JobManager yet"
        slots, registered = overview.get("slots-total", 0), overview.get("taskmanagers", 0)
        flink = self.ctx.settings.flink
        if registered >= flink.taskmanagers and slots >= flink.parallelism:
            return True, f"registered, {slots} slots" + (f" on {registered} TaskManagers" if registered > 1 else "")
        return False, f"{registered} of {flink.taskmanagers} TaskManagers registered with the JobManager"
