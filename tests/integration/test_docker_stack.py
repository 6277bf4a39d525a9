"""The whole pipeline in containers, end to end through the CLI: images built here from the verified
artifacts (no registry), `up --runtime docker`, load, `validate` exact, `down` leaving nothing labelled."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from streamctl import provision
from streamctl.endpoints import Endpoints
from streamctl.runtimes.docker.engine import LABEL_PROJECT
from streamctl.runtimes.docker.local_images import local_image_settings, local_versions
from tests.integration.dockerutil import docker_client, labelled
from streamctl.waits import http_json
from tests.integration.stackutil import (
    Poster, assert_live_view_shows_the_exact_stack, cli, make_stack_config, settings_of, wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]


def test_docker_stack_up_load_validate_exact_and_down_leaves_nothing():
    client = docker_client()
    probe = make_stack_config("probe")
    versions = local_versions(settings_of(probe).cache_dir)
    shutil.rmtree(probe.parent, ignore_errors=True)
    config = make_stack_config("dock", window_seconds=5, docker={
        "images": local_image_settings(versions), "disabled_services": "kibana,kafka-ui"})
    project = "streamctl-dock"
    try:
        assert cli(config, "build-images") == 0
        assert cli(config, "up", "--runtime", "docker") == 0

        containers = client.api.containers(filters={"label": f"{LABEL_PROJECT}={project}"})
        assert {c["Labels"]["com.streamctl.service"] for c in containers} == {
            "kafka", "postgres", "elasticsearch", "flink-jobmanager", "flink-taskmanager", "producer", "indexer"}
        for c in containers:
            for binding in c["Ports"]:
                if "PublicPort" in binding:
                    assert binding["IP"] == "127.0.0.1", f"{c['Names'][0]} publishes {binding} beyond loopback"
        ids = {c["Id"] for c in containers}

        assert cli(config, "up", "--runtime", "docker") == 0, "a second up is a no-op"
        assert {c["Id"] for c in client.api.containers(filters={"label": f"{LABEL_PROJECT}={project}"})} == ids

        assert cli(config, "load", "--users", "20", "--duration", "10s") == 0
        assert cli(config, "validate", "--wait", "90s") == 0
        assert_live_view_shows_the_exact_stack(config)  # a process of this machine beside the containers

        # kill -9 of the TaskManager during load: its restart policy brings it back, the job restores its
        # last checkpoint, and every transaction is still counted once.
        settings = settings_of(config)
        endpoints = Endpoints.of(settings)
        before = client.api.inspect_container(f"{project}-flink-taskmanager")
        with Poster(endpoints.producer_url) as poster:
            poster.wait_for_more(50)
            os.kill(before["State"]["Pid"], signal.SIGKILL)
            wait_for(lambda: client.api.inspect_container(f"{project}-flink-taskmanager")["RestartCount"]
                     > before["RestartCount"], 60, what="the TaskManager container to be restarted")
            poster.wait_for_more(50)
        assert poster.acknowledged and set(poster.statuses) <= {201}

        def job_running() -> bool:
            job = provision.find_job(endpoints.flink_url, provision.StackNames.of(settings).job_name)
            return job is not None and provision.job_fully_running(endpoints.flink_url, job.job_id)[0]

        wait_for(job_running, 120, what="the job to run again")
        assert cli(config, "validate", "--wait", "90s") == 0
        assert cli(config, "status") == 0
        assert cli(config, "logs", "producer", "-n", "5") == 0

        assert cli(config, "down") == 0
        left = labelled(client, project)
        assert left["containers"] == [] and left["networks"] == []
        assert left["volumes"], "down keeps the data volumes"

        # The next up resumes the job from the savepoint `down` took, on the kept volumes.
        assert (settings.stack_dir / "flink" / "last-savepoint").is_file()
        assert cli(config, "up", "--runtime", "docker") == 0
        flink = Endpoints.of(settings).flink_url
        job = provision.find_job(flink, provision.StackNames.of(settings_of(config)).job_name)
        _, checkpoints = http_json(f"{flink}/jobs/{job.job_id}/checkpoints")
        restored = checkpoints["latest"]["restored"]
        assert restored["is_savepoint"] and "/flink-state/savepoints/savepoint-" in restored["external_path"]
        assert cli(config, "load", "--users", "5", "--duration", "8s") == 0
        assert cli(config, "validate", "--wait", "90s") == 0
    finally:
        cli(config, "down", "--purge")
        shutil.rmtree(config.parent, ignore_errors=True)
    assert labelled(client, project) == {"containers": [], "networks": [], "volumes": []}
