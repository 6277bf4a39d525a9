"""streamctl's compose engine against a real Docker engine: ordering and health waits, a failing
dependency, idempotent `up`, recreate on change, `down` removing everything it labelled."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from streamctl.errors import PreflightError, StartupError
from streamctl.runtimes.docker.engine import LABEL_HASH, LABEL_PROJECT, LABEL_SERVICE
from tests.integration.dockerutil import Engine, docker_client, ensure_base_image, labelled, make_project, throwaway_project_name

pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture(scope="module")
def client():
    return docker_client()


@pytest.fixture(scope="module")
def base(client):
    return ensure_base_image(client)


def sh(script: str) -> list[str]:
    return ["bash", "-c", script]


def services(base: str, app_env: str = "1") -> dict:
    return {
        # healthy only after 5 s: whatever waits for it must not start before then, and what only waits for
        # it to run starts well within that, even on a slow engine (a container's start can take 1-3 s)
        "db": {"image": base, "init": True, "stop_grace_period": "1s",
               "command": sh("sleep 5; touch /tmp/ready; exec sleep infinity"),
               "volumes": ["data:/data"],
               "healthcheck": {"test": ["CMD", "test", "-f", "/tmp/ready"], "interval": "500ms", "retries": 40}},
        "migrate": {"image": base, "command": sh("sleep 1; echo migrated > /data/done"), "volumes": ["data:/data"],
                    "depends_on": {"db": {"condition": "service_healthy"}}},
        "app": {"image": base, "init": True, "stop_grace_period": "1s", "command": sh("exec sleep infinity"),
                "environment": {"SETTING": app_env}, "volumes": ["data:/data:ro"],
                "depends_on": {"migrate": {"condition": "service_completed_successfully"}}},
        "worker": {"image": base, "init": True, "stop_grace_period": "1s", "command": sh("exec sleep infinity"),
                   "depends_on": ["db"]},
    }


def when(text: str) -> float:
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()


def test_up_orders_waits_is_idempotent_recreates_on_change_and_down_removes_all(client, base, tmp_path):
    with throwaway_project_name() as name:
        project = make_project(name, services(base), {"data": None})
        engine = Engine(client, project, tmp_path)
        report = engine.up()
        assert {o.action for o in report.outcomes.values()} == {"created"}

        state = {s: engine.inspect(s)["State"] for s in project.services}
        db_healthy_at = min(when(log["End"]) for log in state["db"]["Health"]["Log"] if log["ExitCode"] == 0)
        assert when(state["db"]["StartedAt"]) + 4.9 <= db_healthy_at
        assert when(state["migrate"]["StartedAt"]) >= db_healthy_at - 0.05, "migrate started before db was healthy"
        assert state["migrate"]["ExitCode"] == 0
        assert when(state["app"]["StartedAt"]) >= when(state["migrate"]["FinishedAt"]) - 0.05, \
            "app started before migrate completed"
        # service_started: the worker need not wait for db's health, only for db to run
        assert when(state["worker"]["StartedAt"]) < db_healthy_at

        for info in client.api.containers(all=True, filters={"label": f"{LABEL_PROJECT}={name}"}):
            assert info["Labels"][LABEL_SERVICE] in project.services and len(info["Labels"][LABEL_HASH]) == 16

        ids = {s: c.id for s, c in engine.containers().items()}
        again = Engine(client, make_project(name, services(base), {"data": None}), tmp_path)
        report = again.up()
        assert {o.action for o in report.outcomes.values()} == {"unchanged"}
        assert {s: c.id for s, c in again.containers().items()} == ids

        changed = Engine(client, make_project(name, services(base, app_env="2"), {"data": None}), tmp_path)
        report = changed.up()
        assert report.outcomes["app"].action == "recreated"
        assert {n for n, o in report.outcomes.items() if o.action == "unchanged"} == {"db", "migrate", "worker"}
        after = {s: c.id for s, c in changed.containers().items()}
        assert after["app"] != ids["app"] and all(after[s] == ids[s] for s in ("db", "migrate", "worker"))

        changed.down()
        left = labelled(client, name)
        assert left["containers"] == [] and left["networks"] == []
        assert len(left["volumes"]) == 1, "down without purge keeps the volume"
        changed.down(purge=True)
        assert labelled(client, name)["volumes"] == []


def test_a_failing_dependency_stops_its_dependents_with_its_name_and_log(client, base, tmp_path):
    with throwaway_project_name() as name:
        broken = services(base)
        broken["db"]["command"] = sh("echo 'fatal: cannot open the data directory'; exit 3")
        engine = Engine(client, make_project(name, broken, {"data": None}), tmp_path)
        with pytest.raises(StartupError) as caught:
            engine.up()
        error = caught.value
        assert "db exited with code 3" in error.message
        assert "cannot open the data directory" in error.details
        assert "not started because of it: app, migrate" in error.hint
        # worker only needed db to have started, as in Compose; what needed it healthy was never created
        assert set(engine.containers()) == {"db", "worker"}


def test_a_crashing_service_with_a_restart_policy_fails_up_at_once(client, base, tmp_path):
    with throwaway_project_name() as name:
        project = make_project(name, {"db": {
            "image": base, "restart": "unless-stopped", "command": sh("echo 'bad config'; exit 3"),
            "healthcheck": {"test": ["CMD", "true"], "interval": "1s", "retries": 100}}})
        started = time.monotonic()
        with pytest.raises(StartupError, match="db exited with code 3") as caught:
            Engine(client, project, tmp_path).up()
        assert "bad config" in caught.value.details
        assert time.monotonic() - started < 20, "waited out the healthcheck instead of seeing the crash"


def test_an_unhealthy_service_is_reported_with_its_healthcheck_output(client, base, tmp_path):
    with throwaway_project_name() as name:
        project = make_project(name, {"db": {
            "image": base, "init": True, "stop_grace_period": "1s", "command": sh("exec sleep infinity"),
            "healthcheck": {"test": ["CMD-SHELL", "echo not accepting connections; exit 1"], "interval": "300ms",
                            "retries": 2}}})
        started = time.monotonic()
        with pytest.raises(StartupError, match="db is unhealthy") as caught:
            Engine(client, project, tmp_path).up()
        assert "not accepting connections" in caught.value.message
        assert time.monotonic() - started < 30


def test_a_killed_container_hints_at_memory(client, base, tmp_path):
    with throwaway_project_name() as name:
        project = make_project(name, {"hog": {
            "image": base, "init": True, "command": sh("sleep 0.5; kill -9 $$$$"),  # $$ is Compose for $
            "healthcheck": {"test": ["CMD", "false"], "interval": "5s"}}})
        with pytest.raises(StartupError, match="hog exited with code 137") as caught:
            Engine(client, project, tmp_path).up()
        assert "memory" in caught.value.hint


def test_an_image_that_cannot_be_pulled_names_the_service_and_the_setting(client, tmp_path):
    with throwaway_project_name() as name:
        project = make_project(name, {"kafka": {"image": "registry.invalid/nothing-here:1"}})
        with pytest.raises(StartupError, match="kafka: image registry.invalid/nothing-here:1 is not on this machine") as caught:
            Engine(client, project, tmp_path).up()
        assert "docker.images.kafka" in caught.value.hint


def test_a_taken_port_is_a_preflight_error(client, base, tmp_path):
    import socket

    with socket.socket() as holder, throwaway_project_name() as name:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        project = make_project(name, {"web": {"image": base, "command": sh("exec sleep infinity"), "init": True,
                                              "ports": [f"127.0.0.1:{port}:80"]}})
        with pytest.raises(PreflightError, match=f"web: a port it publishes is already taken .*{port}"):
            Engine(client, project, tmp_path).up()


def test_build_uses_the_stager_and_labels_the_image(client, base, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base}\nCOPY staged.txt /staged.txt\nCMD [\"cat\", \"/staged.txt\"]\n")
    staged = []

    def stager(stage: str, ctx: Path) -> None:
        staged.append(stage)
        (ctx / "staged.txt").write_text("from the stager\n")

    with throwaway_project_name() as name:
        project = make_project(name, {
            "one": {"image": f"{name}/built:1", "build": {"context": str(context), "x-streamctl-stage": "files"}},
            "after": {"image": base, "command": sh("exec sleep infinity"), "init": True,
                      "depends_on": {"one": {"condition": "service_completed_successfully"}}},
        })
        engine = Engine(client, project, tmp_path / "work", stager=stager)
        report = engine.up()
        assert staged == ["files"] and report.built == [f"{name}/built:1"]
        assert list(engine.logs("one", 10, False)) == ["from the stager"]
        assert not (context / "staged.txt").exists(), "the stager fills a copy, never the source folder"
        engine.down()
        client.api.remove_image(f"{name}/built:1", force=True)
