"""One stack model and one `up`/`down` sequence for every runtime: the Compose project derived from
the model, and the lifecycle's order over a runtime that records what it is asked to do. Pure code:
the integration tests run the same sequence on real services."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from streamctl import lifecycle
from streamctl.config import load_settings
from streamctl.errors import ConfigError, StartupError
from streamctl.paths import STACK_DIR
from streamctl.runtimes.docker.compose import ComposeError
from streamctl.runtimes.docker.runtime import DockerRuntime
from streamctl.runtimes.model import ServiceStatus
from streamctl.secrets import Secrets
from streamctl.services import STACK, TASK, ServiceSpec, by_name, for_runtime
from streamctl.topology import stack


def settings(tmp_path, **overrides):
    return load_settings(env={}, cwd=tmp_path, overrides={"state_dir": str(tmp_path), **overrides})


def test_every_runtime_runs_services_of_the_one_model_under_the_same_names(tmp_path):
    model = {s.name for s in STACK}
    for runtime in ("local", "docker", "external"):
        names = {s.name for s in stack(settings(tmp_path), runtime)}
        assert names <= model, runtime
        assert {"topics", "schema", "index-template", "flink-job", "producer", "indexer"} <= names, runtime
    assert {s.name for s in stack(settings(tmp_path), "docker")} - {s.name for s in stack(settings(tmp_path))} == \
        {"kibana", "kibana-objects", "kafka-ui"}  # only as container images


def test_the_compose_file_declares_no_ports_or_dependencies_of_its_own():
    raw = yaml.safe_load((STACK_DIR / "compose.yaml").read_text())
    modelled = {s.name for s in STACK}
    for name, service in raw["services"].items():
        assert name in modelled, f"{name} is in the compose file but not in the stack model"
        assert "ports" not in service and "depends_on" not in service, name


def test_a_left_out_service_takes_its_provisioning_step_along_but_not_its_dependents(tmp_path):
    names = {s.name for s in stack(settings(tmp_path, **{"docker.disabled_services": "kibana,kafka-ui"}), "docker")}
    assert "kibana-objects" not in names and "kibana" not in names and "indexer" in names
    with pytest.raises(ConfigError, match="indexer depends on elasticsearch, which docker.disabled_services"):
        stack(settings(tmp_path, **{"docker.disabled_services": "elasticsearch"}), "docker")
    with pytest.raises(ConfigError, match="no service kibna"):
        for_runtime("docker", ("kibna",))


def test_a_compose_file_that_sets_ports_for_a_modelled_service_is_refused(tmp_path):
    runtime = DockerRuntime(settings(tmp_path))
    project = runtime.project(Secrets("pw"))
    raw = yaml.safe_load((STACK_DIR / "compose.yaml").read_text())
    raw["services"]["kafka"]["ports"] = ["9092:9092"]
    custom = tmp_path / "compose.yaml"
    custom.write_text(yaml.safe_dump(raw))
    with pytest.raises(ComposeError, match="services.kafka declares ports:/depends_on:"):
        DockerRuntime(settings(tmp_path, **{"docker.compose_file": str(custom)})).project(Secrets("pw"))
    raw["services"]["kafka"].pop("ports")
    raw["services"]["extra"] = {"image": "busybox"}
    custom.write_text(yaml.safe_dump(raw))
    with pytest.raises(ComposeError, match="service extra is not in streamctl's stack model"):
        DockerRuntime(settings(tmp_path, **{"docker.compose_file": str(custom)})).project(Secrets("pw"))
    del raw["services"]["kafka"], raw["services"]["extra"]
    custom.write_text(yaml.safe_dump(raw))
    with pytest.raises(ComposeError, match="has no service kafka, which the stack needs"):
        DockerRuntime(settings(tmp_path, **{"docker.compose_file": str(custom)})).project(Secrets("pw"))
    assert project.services["producer"].ports[0].host_port == 5000


@pytest.mark.parametrize("slots, parallelism, healthy", [(2, 2, True), (4, 2, True), (1, 2, False), (0, 1, False)])
def test_the_taskmanager_healthcheck_means_what_ready_means_locally(tmp_path, slots, parallelism, healthy):
    """Slots >= the job's parallelism, tested by running the healthcheck's own shell command."""
    project = DockerRuntime(settings(tmp_path, **{"flink.parallelism": parallelism})).project(Secrets("pw"))
    command = project.services["flink-taskmanager"].healthcheck.test[1]
    overview = f'{{"taskmanagers":1,"slots-total":{slots},"slots-available":0,"jobs-running":0}}'
    command = command.replace("curl -fsS http://flink-jobmanager:8081/overview", f"printf '%s' '{overview}'")
    assert (subprocess.run(["sh", "-c", command]).returncode == 0) == healthy


class Recording:
    """A runtime that does nothing but record, to check the order lifecycle imposes."""

    name = "recording"
    owns_clusters = True

    def __init__(self, specs, fail: str = ""):
        self.settings = load_settings(env={}, cwd=Path("/tmp"))
        self.specs = specs
        self.fail = fail
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def record(self, call: str) -> None:
        with self.lock:
            self.calls.append(call)

    def exclusive(self):
        self.record("lock")
        return contextlib.nullcontext()

    def preflight(self, fetch, progress):
        self.record("preflight")
        if fetch:
            fetch()
        return ["a note"]

    def start(self, spec, progress):
        self.record(f"start {spec.name}")
        if spec.name == self.fail:
            raise StartupError(f"{spec.name} would not start")
        return False

    def after_up(self):
        self.record("after_up")

    def before_down(self, purge):
        self.record("before_down")

    def stop(self, spec, progress):
        self.record(f"stop {spec.name}")
        return "stopped"

    def release(self, purge, progress):
        self.record(f"release purge={purge}")
        return []

    def inspect(self, spec):
        return ServiceStatus(spec.name, "running", True, "")

    def addresses(self):
        return {"api": "http://x"}

    def running(self, role):
        return False


CHAIN = (ServiceSpec("db", ""), ServiceSpec("broker", ""), ServiceSpec("api", "", ("db", "broker")),
         ServiceSpec("worker", "", ("api",)))


def test_up_checks_and_fetches_before_starting_anything_and_starts_dependencies_first():
    runtime = Recording(CHAIN)
    result = lifecycle.up(runtime, fetch=lambda: runtime.record("fetch"), with_live_view=False)
    calls = runtime.calls
    assert calls[:3] == ["lock", "preflight", "fetch"] and calls[-1] == "after_up"
    assert calls.index("start api") > max(calls.index("start db"), calls.index("start broker"))
    assert calls.index("start worker") > calls.index("start api")
    assert result.notes == ["a note"] and result.endpoints == {"api": "http://x"}
    assert sorted(result.started) == ["api", "broker", "db", "worker"]


def test_a_failed_start_names_what_it_kept_from_starting():
    runtime = Recording(CHAIN, fail="broker")
    with pytest.raises(StartupError, match="broker would not start") as failure:
        lifecycle.up(runtime, with_live_view=False)
    assert "start api" not in runtime.calls and "after_up" not in runtime.calls
    assert "not started because of it: api, worker" in failure.value.hint


def test_down_stops_dependents_first_and_releases_last():
    runtime = Recording(CHAIN + (ServiceSpec("migrate", "", ("db",), kind=TASK),))
    lifecycle.down(runtime, purge=True)
    calls = runtime.calls
    assert calls[0] == "before_down" and calls[-1] == "release purge=True"
    assert "stop migrate" not in calls  # a provisioning step has nothing to stop
    assert calls.index("stop worker") < calls.index("stop api") < min(calls.index("stop db"), calls.index("stop broker"))


def test_status_reports_each_service_of_the_runtimes_model():
    report = lifecycle.status(Recording(CHAIN))
    assert [s.name for s in report.services] == ["db", "broker", "api", "worker"] and report.job_state == "STOPPED"


def test_the_model_dependencies_are_the_ones_every_runtime_waits_on():
    model = by_name()
    assert set(model["producer"].depends_on) == {"topics"} and set(model["topics"].depends_on) == {"kafka"}
    assert set(model["kibana-objects"].depends_on) == {"kibana", "index-template"}


def test_every_runtime_hosts_the_job_and_the_topics_outside_the_runtime_contract():
    from streamctl.flink.placement import JobHost
    from streamctl.provision import TopicHost
    from streamctl.runtimes.external.runtime import ExternalRuntime
    from streamctl.runtimes.local.runtime import LocalRuntime

    for cls in (LocalRuntime, DockerRuntime, ExternalRuntime):
        assert issubclass(cls, JobHost) and issubclass(cls, TopicHost), cls.__name__
    assert not issubclass(Recording, JobHost)  # the contract itself asks for neither
