"""The job operations' own logic, without a cluster: what an upgrade refuses, where a replay reads from,
what the savepoint list keeps, how --from is read."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from streamctl.cli.commands.job_cmd import parse_time
from streamctl.config import load_settings
from streamctl.endpoints import PostgresAccess
from streamctl.errors import JobStateError, UsageError
from streamctl.exit_codes import ExitCode
from streamctl.flink import operations
from streamctl.flink.placement import JobPlacement
from streamctl.kafka_access import KafkaAccess
from streamctl.provision import JobConfig


def placement(tmp_path, **settings) -> JobPlacement:
    s = load_settings(env={}, cwd=tmp_path, overrides={"state_dir": str(tmp_path), **settings})
    config = JobConfig.of(s, KafkaAccess("k:9092"), PostgresAccess("db", 5432, "u", "", "shop"))
    return JobPlacement("http://127.0.0.1:1", config, client=None, state_dir=tmp_path / "flink",  # type: ignore[arg-type]
                        savepoint_dir=None, local_paths=True)


def submitted(p: JobPlacement, config: JobConfig) -> None:
    config.write(p.state_dir / "job.json")


def test_an_upgrade_names_every_rule_that_changed_and_nothing_else(tmp_path):
    p = placement(tmp_path, **{"flink.window_seconds": 20})
    submitted(p, replace(p.config, window_seconds=10, checkpoint_interval_seconds=99, dedup_minutes=5))
    assert operations.incompatible_changes(p) == ["window_seconds 10 -> 20", "dedup_minutes 5 -> 10"]
    submitted(p, replace(p.config, checkpoint_interval_seconds=99, parallelism=7))
    assert operations.incompatible_changes(p) == []  # other settings keep the state


def test_overrides_from_rescale_and_replay_outlive_the_next_submission(tmp_path):
    p = placement(tmp_path)
    p.set_overrides(parallelism=1, emit_from_ms=60_000)
    assert (p.effective_config().parallelism, p.effective_config().emit_from_ms) == (1, 60_000)
    p.set_overrides(emit_from_ms=None)  # replay --all clears it
    assert p.effective_config().emit_from_ms == 0 and p.effective_config().parallelism == 1
    (p.state_dir / "job-overrides.json").write_text(json.dumps({"jdbc_password": "x", "parallelism": 2}))
    assert p.overrides() == {"parallelism": 2}  # only what operations may change


def test_a_replay_reads_from_the_horizon_before_the_first_window_it_writes(tmp_path, monkeypatch):
    p = placement(tmp_path, **{"flink.window_seconds": 60, "flink.dedup_minutes": 10})
    monkeypatch.setattr(operations, "current", lambda _: None)
    submissions = []
    monkeypatch.setattr(operations, "ensure_running",
                        lambda p, progress, fresh: submissions.append((fresh, p.effective_config())) or ("id", "ok"))
    erased = []
    from_ms = 1_800_000_000_123  # 123 ms into a minute
    operations.replay(p, 5, from_ms, lambda start: erased.append(start) or "erased")
    window_start = from_ms // 60_000 * 60_000
    fresh, config = submissions[0]
    assert fresh and erased == [window_start] and config.emit_from_ms == window_start
    assert config.read_from_ms == window_start - 600_000 - config.event_time_tolerance_ms - 1000
    operations.replay(p, 5, None, lambda start: erased.append(start) or "erased")
    assert erased[-1] is None and submissions[-1][1].read_from_ms is None and submissions[-1][1].emit_from_ms == 0


def test_the_savepoint_list_keeps_the_newest_and_deletes_the_rest(tmp_path):
    p = placement(tmp_path)
    made = []
    for n in range(4):
        directory = tmp_path / "savepoints" / f"savepoint-{n}"
        directory.mkdir(parents=True)
        (directory / "_metadata").write_text("x")
        made.append(directory)
        disposed = operations._remember(p, operations.Savepoint(directory.as_uri(), time.time(), "j", "savepoint"), 2)
    assert [s.location for s in operations.savepoints(p)] == [d.as_uri() for d in made[2:]]
    assert disposed == [made[1].as_uri()] and not made[0].exists() and not made[1].exists() and made[3].exists()


def test_resume_from_a_path_that_does_not_exist_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setattr(operations, "current", lambda _: None)
    with pytest.raises(UsageError) as error:
        operations.resume(placement(tmp_path), str(tmp_path / "nothing-here"))
    assert "does not exist" in error.value.message and error.value.exit_code == ExitCode.USAGE
    with pytest.raises(JobStateError) as refused:
        operations.resume(placement(tmp_path), "latest")  # nothing to resume from
    assert refused.value.exit_code == ExitCode.JOB_STATE


def test_from_reads_an_iso_time_in_utc_or_a_duration_ago():
    assert parse_time("2026-11-26T10:15:00Z") == parse_time("2026-11-26T10:15:00") == 1795688100000
    assert parse_time("2026-11-26T11:15:00+01:00") == 1795688100000
    assert abs(parse_time("15m") - (time.time() - 900) * 1000) < 5000
    with pytest.raises(UsageError):
        parse_time("yesterday")


def test_a_replay_refuses_windows_the_topic_no_longer_holds(tmp_path, monkeypatch):
    p = placement(tmp_path, **{"flink.window_seconds": 60, "flink.dedup_minutes": 10})
    monkeypatch.setattr(operations, "current", lambda _: None)
    erased = []
    retained = 1_800_000_000_000  # retention deleted everything before this
    with pytest.raises(JobStateError) as refused:
        operations.replay(p, 5, None, lambda start: erased.append(start) or "", lambda: retained)
    assert "no longer holds every record before" in refused.value.message and erased == []  # nothing erased
    first_exact = -(-(retained + 600_000 + p.config.event_time_tolerance_ms + 1000) // 60_000) * 60_000
    monkeypatch.setattr(operations, "ensure_running", lambda p, progress, fresh: ("id", "ok"))
    operations.replay(p, 5, first_exact, lambda start: erased.append(start) or "", lambda: retained)
    assert erased == [first_exact]  # from the first window it can recompute exactly, it goes ahead


def test_a_drained_savepoint_is_never_resumed_from(tmp_path, monkeypatch):
    p = placement(tmp_path)
    directory = tmp_path / "savepoints" / "savepoint-drained"
    directory.mkdir(parents=True)
    (directory / "_metadata").write_text("x")
    operations._remember(p, operations.Savepoint(directory.as_uri(), time.time(), "j", "drain"), 5)
    monkeypatch.setattr(operations, "current", lambda _: None)
    with pytest.raises(JobStateError) as refused:
        operations.resume(p, directory.as_uri())
    assert "--drain" in refused.value.message
    with pytest.raises(JobStateError):  # and `latest` does not pick it either: there is nothing else
        operations.resume(p, "latest")


class RecordingSubmitter:
    """Stands in for the Flink client: records what would be submitted."""
    submitted: list = []

    def __init__(self, *_):
        pass

    def ensure_running(self, config, source, progress, job):
        RecordingSubmitter.submitted.append((config, source))
        return "id", "RUNNING"


def test_a_job_restoring_state_keeps_the_rules_that_state_was_built_with(tmp_path, monkeypatch):
    # The settings now say a 1 s watermark delay (the default); the saved state was built with 3 s.
    p = placement(tmp_path, **{"flink.watermark_delay_seconds": 1})
    submitted(p, replace(p.config, watermark_delay_seconds=3, checkpoint_interval_seconds=99))
    monkeypatch.setattr(operations, "JobSubmitter", RecordingSubmitter)
    monkeypatch.setattr(operations, "current", lambda _: None)
    RecordingSubmitter.submitted = []
    _, detail = operations.ensure_running(p, restore="file:///savepoints/savepoint-1")
    config, source = RecordingSubmitter.submitted[-1]
    assert (config.watermark_delay_seconds, source) == (3, "file:///savepoints/savepoint-1")
    assert config.checkpoint_interval_seconds == p.config.checkpoint_interval_seconds  # other settings apply
    assert "kept watermark_delay_seconds 3" in detail and "upgrade --replay" in detail
    operations.ensure_running(p, fresh=True)  # nothing restored: the settings' rules
    assert RecordingSubmitter.submitted[-1][0].watermark_delay_seconds == 1


def test_the_rules_kept_are_those_of_the_job_that_took_the_state_not_the_last_submission(tmp_path, monkeypatch):
    p = placement(tmp_path, **{"flink.window_seconds": 20, "kafka.topic": "orders"})
    monkeypatch.setattr(operations, "JobSubmitter", RecordingSubmitter)
    monkeypatch.setattr(operations, "current", lambda _: None)
    old_job, checkpointed_job = "a" * 32, "b" * 32
    operations._remember_rules(p, old_job, replace(p.config, window_seconds=10))
    operations._remember_rules(p, checkpointed_job, replace(p.config, window_seconds=30))
    operations._remember(p, operations.Savepoint("file:///sp/savepoint-old", time.time(), old_job, "savepoint"), 5)
    # Since then a replay submitted 20 s windows on another topic: job.json says so.
    submitted(p, replace(p.config, window_seconds=20, topic="sales"))
    _, detail = operations.ensure_running(p, restore="file:///sp/savepoint-old")
    assert RecordingSubmitter.submitted[-1][0].window_seconds == 10 and "kept window_seconds 10" in detail
    assert RecordingSubmitter.submitted[-1][0].topic == "orders"  # the topic follows the settings, as the API does
    operations.ensure_running(p, restore=f"file:///checkpoints/{checkpointed_job}/chk-42")
    assert RecordingSubmitter.submitted[-1][0].window_seconds == 30
    operations.ensure_running(p, restore="file:///elsewhere/savepoint-unknown")  # unknown: the last submission's
    assert RecordingSubmitter.submitted[-1][0].window_seconds == 20
    (p.state_dir / "job.json").write_text('{"window_seconds": "ten", "dedup_minutes": null, "state_format": 2}')
    operations.ensure_running(p, restore="file:///elsewhere/savepoint-unknown")  # unreadable: the settings'
    assert RecordingSubmitter.submitted[-1][0].window_seconds == 20


def test_a_job_already_running_is_not_said_to_keep_anything(tmp_path, monkeypatch):
    p = placement(tmp_path, **{"flink.watermark_delay_seconds": 1})
    submitted(p, replace(p.config, watermark_delay_seconds=3))
    monkeypatch.setattr(operations, "JobSubmitter", RecordingSubmitter)
    monkeypatch.setattr(operations, "current", lambda _: operations.JobState("j", "RUNNING", 0))
    _, detail = operations.ensure_running(p, restore="file:///savepoints/savepoint-1")
    assert "kept" not in detail


def test_state_written_by_the_jobs_earlier_retry_operator_is_refused_before_anything_is_submitted(tmp_path, monkeypatch):
    # What the version before RetryRule left: rules recorded without a state format, and job.json alike.
    p = placement(tmp_path)
    old_job = "c" * 32
    (p.state_dir).mkdir(parents=True)
    (p.state_dir / "job-rules.json").write_text(json.dumps(
        {old_job: {"window_seconds": 60, "dedup_minutes": 10, "watermark_delay_seconds": 1}}))
    old_config = {k: v for k, v in p.config.to_json().items() if k != "state_format"}
    (p.state_dir / "job.json").write_text(json.dumps(old_config))
    operations._remember(p, operations.Savepoint("file:///sp/savepoint-old", time.time(), old_job, "stop"), 5)
    monkeypatch.setattr(operations, "JobSubmitter", RecordingSubmitter)
    monkeypatch.setattr(operations, "current", lambda _: None)
    RecordingSubmitter.submitted = []
    for source in ("file:///sp/savepoint-old", f"file:///checkpoints/{old_job}/chk-7"):
        with pytest.raises(JobStateError) as refused:
            operations.ensure_running(p, restore=source)
        assert "earlier version of the job" in refused.value.message and "\n" not in refused.value.message
        assert "job upgrade --replay" in refused.value.hint
    assert RecordingSubmitter.submitted == []
    assert operations.incompatible_changes(p) == ["state format 1 -> 2 (a new retry operator)"]
    operations.ensure_running(p, fresh=True)  # a replay starts without state: submitted
    submitted(p, p.config)  # as the submitter writes job.json
    operations.ensure_running(p, restore="file:///sp/savepoint-new")
    assert RecordingSubmitter.submitted[-1][1] == "file:///sp/savepoint-new"
    assert json.loads((p.state_dir / "job-rules.json").read_text())["id"]["state_format"] == 2
