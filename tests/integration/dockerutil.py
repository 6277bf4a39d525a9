"""Helpers for tests on a real Docker engine: the engine client, the debootstrap'd base image, and
throwaway projects that are always removed."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from pathlib import Path

import pytest

from streamctl.runtimes.docker.compose import Project, parse_project
from streamctl.runtimes.docker.engine import LABEL_PROJECT, Engine, connect
from streamctl.runtimes.docker.local_images import BASE_IMAGE, build_base

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
