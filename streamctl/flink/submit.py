"""Submit the aggregation job to a Flink session cluster and wait until every vertex is RUNNING.

Shared by the runtimes: the client is PyFlink's Java gateway in this process (flink/gateway.py), with
the configuration FlinkCluster prepared, talking to the JobManager's REST address; only the job's
own addresses (JobConfig) and the restore point differ per runtime.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import yaml

from streamctl.artifacts.job_jar import job_jar
from streamctl.errors import StartupError
from streamctl.flink import config as job_config
from streamctl.flink import gateway
from streamctl.flink.cluster import FlinkCluster
from streamctl.flink.config import JOB_CONFIG_FILE, JobConfig
from streamctl.flink.rest import JobState, find_job, job_fully_running
from streamctl.progress import Progress

# Ceilings, not expectations (a job that fails ends the wait at once): a loaded two-core machine
# restoring RocksDB state took 40 s from submission to every task running.
APPEAR_TIMEOUT_S = 120
RUNNING_TIMEOUT_S = 180


def needs_submission(job: JobState | None) -> bool:
    """No job of the stack's name on the cluster, or only one that ended."""
    return job is None or job.ended


def tail_file(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class JobSubmitter:
    def __init__(self, cluster: FlinkCluster, rest_url: str, log_file: Path,
                 failure_details: Callable[[], str] = lambda: "", failure_hint: str = ""):
        self.cluster = cluster
        self.rest_url = rest_url
        self.log_file = log_file
        self.failure_details = failure_details
        self.failure_hint = failure_hint

    def ensure_running(self, config: JobConfig, restore: str | None, progress: Progress,
                       job: JobState | None) -> tuple[str, str]:
        """(job id, detail). Submits when `job` (the job of that name, as just found) needs it;
        `restore` is a savepoint or checkpoint location as the cluster sees it."""
        restored_from = ""
        if job is None or needs_submission(job):
            restored_from = f"; restored from {restore.rstrip('/').rsplit('/', 1)[-1]}" if restore else ""
            progress.update("flink-job", "submitting", f"from {restore}" if restore else "fresh start")
            self.submit(config, restore)
            deadline = time.monotonic() + APPEAR_TIMEOUT_S
            while (job := find_job(self.rest_url, config.job_name)) is None or job.state in ("FINISHED", "CANCELED"):
                if time.monotonic() > deadline:
                    raise StartupError("the submitted job did not appear in Flink", hint=self.failure_hint)
                time.sleep(0.5)
        deadline = time.monotonic() + RUNNING_TIMEOUT_S
        detail = ""
        while time.monotonic() < deadline:
            ok, detail = job_fully_running(self.rest_url, job.job_id)
            if ok:
                return job.job_id, f"{detail}{restored_from}"
            if detail.startswith("FAILED"):
                break
            progress.update("flink-job", "waiting", detail)
            time.sleep(0.5)
        hint = self.failure_hint
        if restore and restored_from:  # e.g. a savepoint of an older job graph that the new one cannot map
            hint = (f"it was restored from {restore}: if that state does not fit this job, `streamctl job replay"
                    f" --all` recomputes every window from the topic instead; {self.failure_hint}")
        raise StartupError(f"the Flink job is not running: {detail}", hint=hint, details=self.failure_details())

    def submit(self, config: JobConfig, restore: str | None) -> None:
        ctx = self.cluster.ctx
        operator = job_jar(ctx.java.home, self.cluster.home, ctx.settings.cache_dir)
        config = dataclasses.replace(config, pipeline_jars=(*config.pipeline_jars, operator.resolve().as_uri()))
        config_file = config.write(self.cluster.dir / JOB_CONFIG_FILE)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            job_id = gateway.submit(job_config.JOB_FILE, json.loads(config_file.read_text()),
                                    self.flink_configuration(restore), flink_home=self.cluster.home,
                                    lib=gateway.link_client_lib(ctx.settings.cache_dir, self.cluster.lib_jars()),
                                    java_home=ctx.java.home, log_dir=ctx.settings.cache_dir / "flink-client" / "log")
        except StartupError as error:
            self._log(f"submission failed: {error.message}\n{error.details}")
            error.hint = f"full log: {self.log_file}"
            raise
        self._log(f"submitted job {job_id} in {time.monotonic() - started:.1f} s"
                  + (f", restoring {restore}" if restore else ", fresh start"))

    def flink_configuration(self, restore: str | None) -> dict[str, str]:
        """What `flink run -m <rest address> -d [-s <restore>]` submitted with: the client's config.yaml,
        the JobManager's REST address, detached, and the state to restore."""
        client_config = yaml.safe_load((self.cluster.conf_dir / "config.yaml").read_text()) or {}
        flat = {key: value if isinstance(value, str) else json.dumps(value) for key, value in client_config.items()}
        address = urlsplit(self.rest_url)
        flat.update({"execution.target": "remote", "rest.address": address.hostname or "",
                     "rest.port": str(address.port or 8081), "execution.attached": "false"})
        if restore is not None:
            flat["execution.savepoint.path"] = restore
        return flat

    def _log(self, line: str) -> None:
        with self.log_file.open("a") as out:
            out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
