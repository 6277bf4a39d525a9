"""Helpers for tests on a real Docker engine: the engine client, the debootstrap'd base image, and
throwaway projects that are always removed."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from streamctl.errors import StartupError, StreamctlError
from streamctl.runtimes.docker import engine as product_engine
from streamctl.runtimes.docker.compose import STARTED, Project, Service, parse_project
from streamctl.runtimes.docker.engine import LABEL_PROJECT, UpReport, _short, connect
from streamctl.runtimes.docker.local_images import BASE_IMAGE, build_base
from streamctl.runtimes.model import NO_PROGRESS, Progress


class _Gate:
    """What dependents of one service wait on: started (service_started), ready (healthy or completed,
    whichever `up` waits for), or failed, with the name of the service whose failure it was."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ready = threading.Event()
        self.failed_root: str | None = None

    def fail(self, root: str) -> None:
        self.failed_root = root
        self.started.set()
        self.ready.set()

    def wait(self, condition: str) -> str | None:
        (self.started if condition == STARTED else self.ready).wait()
        return self.failed_root


class Engine(product_engine.Engine):
    """The product's engine plus `up`: the whole project at once, each service as soon as its
    depends_on conditions hold (service_started, _healthy, _completed_successfully), as Compose does.
    The product starts services one at a time from the stack model's graph (lifecycle); these tests
    exercise the engine's per-service work (create, start, wait, labels, build) through this."""

    def up(self, progress: Progress = NO_PROGRESS) -> UpReport:
        """The whole project in dependency order, each service as soon as its conditions hold."""
        started = time.monotonic()
        report = UpReport()
        report.built = self.prepare(progress)
        existing = self.containers()
        order = {name: n for n, name in enumerate(self.project.start_order())}  # also rejects cycles
        gates = {name: _Gate() for name in self.project.services}
        failed: dict[str, BaseException] = {}
        upstream_failed: dict[str, str] = {}

        def run(service: Service) -> None:
            gate = gates[service.name]
            try:
                for dep, condition in service.depends_on:
                    root = gates[dep].wait(condition)
                    if root is not None:
                        upstream_failed[service.name] = root
                        progress.update(service.name, "skipped", f"{root} failed")
                        gate.fail(root)
                        return
                report.outcomes[service.name] = self._up_service(service, existing.get(service.name), order[service.name],
                                                                 progress, gate.started.set)
                gate.ready.set()
            except BaseException as exc:  # recorded and raised below, after every thread has finished
                failed[service.name] = exc
                progress.update(service.name, "failed", getattr(exc, "message", str(exc))[:120])
                gate.fail(service.name)

        threads = [threading.Thread(target=run, args=(s,), name=f"up-{s.name}", daemon=True)
                   for s in self.project.services.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report.seconds = time.monotonic() - started
        if failed:
            name = min(failed, key=lambda n: order[n])
            error = failed[name]
            if not isinstance(error, StreamctlError):
                error = StartupError(f"{name}: {type(error).__name__}: {_short(str(error), 400)}",
                                     hint=f"see `streamctl logs {name}`")
            if upstream_failed:
                error.hint = (error.hint + "; " if error.hint else "") + \
                    f"not started because of it: {', '.join(sorted(upstream_failed))}"
            raise error
        return report


ENGINE_REQUIRED = "needs a running Docker engine (`make test` starts one)"


def docker_client():
    from streamctl.errors import PreflightError

    try:
        return connect(timeout_s=300)
    except PreflightError as exc:
        pytest.fail(f"{ENGINE_REQUIRED}: {exc.message}")


def ensure_base_image(client) -> str:
    from docker.errors import ImageNotFound

    try:
        client.api.inspect_image(BASE_IMAGE)
    except ImageNotFound:
        with tempfile.TemporaryDirectory(prefix="streamctl-base-") as work:
            build_base(client, Path(work))
    return BASE_IMAGE


def make_project(name: str, services: dict, volumes: dict | None = None) -> Project:
    data = {"services": services, **({"volumes": volumes} if volumes else {})}
    return parse_project(data, {}, Path("/tmp"), "test", name)


@contextlib.contextmanager
def throwaway_project_name():
    name = f"stctest-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        client = connect()
        Engine(client, Project(name, {}), Path(tempfile.gettempdir())).down(purge=True)


def labelled(client, project: str) -> dict[str, list]:
    label = {"label": f"{LABEL_PROJECT}={project}"}
    return {
        "containers": client.api.containers(all=True, filters=label),
        "networks": client.api.networks(filters=label),
        "volumes": client.api.volumes(filters=label).get("Volumes") or [],
    }
