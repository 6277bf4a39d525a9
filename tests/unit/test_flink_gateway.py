"""The in-process Flink client's own logic, without a JVM: the shared client lib/, the configuration a
submission carries (what `flink run -m ... -d -s ...` used to), and how a Java failure is reported."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import yaml

from streamctl.flink import gateway
from streamctl.flink.submit import JobSubmitter


def jars(tmp_path: Path, *names: str) -> list[Path]:
    (tmp_path / "jars").mkdir(exist_ok=True)
    found = []
    for name in names:
        (tmp_path / "jars" / name).write_bytes(b"PK")
        found.append(tmp_path / "jars" / name)
    return found


def test_the_client_lib_links_every_jar_once_and_is_shared_by_equal_jar_sets(tmp_path):
    first = gateway.link_client_lib(tmp_path / "cache", jars(tmp_path, "flink-dist.jar", "kafka.jar"))
    assert sorted(p.name for p in first.iterdir()) == ["flink-dist.jar", "kafka.jar"]
    assert all(p.is_symlink() and p.resolve().is_file() for p in first.iterdir())
    again = gateway.link_client_lib(tmp_path / "cache", list(reversed(jars(tmp_path, "flink-dist.jar", "kafka.jar"))))
    assert again == first
    other = gateway.link_client_lib(tmp_path / "cache", jars(tmp_path, "flink-dist.jar"))
    assert other != first and [p.name for p in other.iterdir()] == ["flink-dist.jar"]
    assert not list((tmp_path / "cache" / "flink-client").glob("*.partial"))


def test_a_lib_another_process_linked_first_is_taken_and_ours_removed(tmp_path, monkeypatch):
    wanted = jars(tmp_path, "a.jar")
    real_rename = Path.rename

    def lose_the_race(self, target):
        target.mkdir()  # another process finished the same lib first...
        (target / "a.jar").symlink_to(wanted[0])
        return real_rename(self, target)  # ...so ours cannot take its name (directory not empty)

    monkeypatch.setattr(Path, "rename", lose_the_race)
    lib = gateway.link_client_lib(tmp_path / "cache", wanted)
    assert [p.name for p in lib.iterdir()] == ["a.jar"]
    assert [p.name for p in (tmp_path / "cache" / "flink-client").iterdir()] == [lib.name]


def submitter(tmp_path: Path, rest_url: str) -> JobSubmitter:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(yaml.safe_dump({
        "env.java.opts.all": "--add-opens=java.base/java.util=ALL-UNNAMED", "state.checkpoints.num-retained": 2,
        "web.submit.enable": False, "rest.address": "jobmanager", "rest.port": 8081}))
    cluster = SimpleNamespace(conf_dir=conf)
    return JobSubmitter(cluster, rest_url, tmp_path / "flink-job.log")  # type: ignore[arg-type]


def test_a_submission_carries_the_client_config_the_rest_address_detached_and_the_restore_point(tmp_path):
    flink = submitter(tmp_path, "http://127.0.0.1:28081").flink_configuration("file:/state/savepoint-1")
    assert flink["env.java.opts.all"] == "--add-opens=java.base/java.util=ALL-UNNAMED"
    assert flink["state.checkpoints.num-retained"] == "2" and flink["web.submit.enable"] == "false"
    assert (flink["execution.target"], flink["rest.address"], flink["rest.port"]) == ("remote", "127.0.0.1", "28081")
    assert flink["execution.attached"] == "false"
    assert flink["execution.savepoint.path"] == "file:/state/savepoint-1"
    assert all(isinstance(value, str) for value in flink.values())


def test_a_fresh_start_restores_nothing_and_an_ipv6_address_loses_its_brackets(tmp_path):
    flink = submitter(tmp_path, "http://[::1]:8081").flink_configuration(None)
    assert "execution.savepoint.path" not in flink
    assert (flink["rest.address"], flink["rest.port"]) == ("::1", "8081")


def test_a_java_failure_is_reported_by_its_causes_without_stack_frames():
    text = """An error occurred while calling o12.execute.
: org.apache.flink.table.api.ValidationException: Unable to create a source for reading table 'transactions'.
\tat org.apache.flink.table.factories.FactoryUtil.createDynamicTableSource(FactoryUtil.java:231)
\t... 35 more
Caused by: org.apache.flink.table.api.ValidationException: Cannot discover a connector using option: 'connector'='kafka'
\tat org.apache.flink.table.factories.FactoryUtil.discoverTableFactory(FactoryUtil.java:788)
"""
    message = gateway.java_message(Exception(text))
    assert "Cannot discover a connector using option: 'connector'='kafka'" in message
    assert "Unable to create a source for reading table 'transactions'" in message
    assert "FactoryUtil.java" not in message and "more" not in message
