from __future__ import annotations

import pytest

from streamctl.artifacts.lock import Artifact, Lock, Role, parse_lock, read_lock, render_lock
from streamctl.artifacts.lockgen import parse_dependency_list
from streamctl.errors import ArtifactError
from streamctl.paths import LOCK_FILE

SHA = "a" * 64


def test_project_lock_is_well_formed():
    lock = read_lock(LOCK_FILE)
    roles = {a.role for a in lock.artifacts}
    assert roles == set(Role.ALL)
    names = {(a.group, a.artifact) for a in lock.artifacts}
    assert ("org.apache.flink", "flink-connector-kafka") in names
    assert ("org.apache.flink", "flink-connector-jdbc") in names
    assert ("org.postgresql", "postgresql") in names
    assert ("org.apache.kafka", "kafka_2.13") in names
    assert ("org.apache.logging.log4j", "log4j-core") in names
    es = lock.by_role(Role.ELASTICSEARCH)
    assert len(es) == 1 and es[0].extension == "zip" and es[0].version.startswith("8.")
    kafka = [a for a in lock.artifacts if a.artifact == "kafka_2.13"][0]
    assert kafka.version.startswith("4.")
    jdbc = [a for a in lock.artifacts if a.artifact == "flink-connector-jdbc"][0]
    assert jdbc.version.endswith("-1.20")


def test_render_then_parse_round_trips():
    lock = Lock((Artifact("g.h", "a", "1.0", "jar", "", SHA, 10, Role.KAFKA_BROKER),
                 Artifact("g.h", "b", "2.0", "zip", "linux", SHA, 20, Role.ELASTICSEARCH)))
    text = render_lock(lock, "header line")
    assert text.startswith("# header line")
    assert set(parse_lock(text).artifacts) == set(lock.artifacts)


def test_paths_follow_the_maven_layout():
    a = Artifact("org.example.x", "thing", "1.2", "jar", "tests", SHA, 1, Role.FLINK_CONNECTOR)
    assert a.repository_path == "org/example/x/thing/1.2/thing-1.2-tests.jar"
    assert a.coordinates == "org.example.x:thing:jar:tests:1.2"
    assert a.cache_path == "flink-connector/org/example/x/thing/1.2/thing-1.2-tests.jar"


@pytest.mark.parametrize("mutation, fragment", [
    (lambda t: t.replace("lock_version = 1", "lock_version = 9"), "lock_version"),
    (lambda t: t.replace(SHA, "xyz"), "sha256"),
    (lambda t: t.replace("size = 10", 'size = "10"'), "size"),
    (lambda t: t.replace('role = "kafka-broker"', 'role = "other"'), "role"),
    (lambda t: t.replace('classifier = ""\n', ""), "missing"),
    (lambda t: t + "[[artifact\n", "TOML"),
    (lambda t: t.split("[[artifact]]")[0], "no [[artifact]]"),
])
def test_malformed_locks_are_rejected(mutation, fragment):
    text = render_lock(Lock((Artifact("g", "a", "1", "jar", "", SHA, 10, Role.KAFKA_BROKER),)), "h")
    with pytest.raises(ArtifactError, match=fragment.replace("[", r"\[")):
        parse_lock(mutation(text))


def test_duplicates_are_rejected():
    a = Artifact("g", "a", "1", "jar", "", SHA, 10, Role.KAFKA_BROKER)
    with pytest.raises(ArtifactError, match="twice"):
        parse_lock(render_lock(Lock((a, a)), "h"))


def test_maven_dependency_list_parsing(tmp_path):
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"abc")
    text = (
        "\nThe following files have been resolved:\n"
        f"   org.x:a:jar:1.0:compile:{jar}\n"
        f"   org.x:b:zip:linux:2.0:runtime:{jar}\n"
    )
    first, second = parse_dependency_list(text, Role.KAFKA_BROKER)
    assert (first.group, first.artifact, first.version, first.classifier, first.size) == ("org.x", "a", "1.0", "", 3)
    assert first.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert (second.extension, second.classifier, second.version) == ("zip", "linux", "2.0")
