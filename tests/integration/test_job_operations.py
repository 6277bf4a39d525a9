"""`streamctl job ...` on a running local stack, each operation under load and each ending exact.

The stack has two TaskManagers with one slot each, so the job can be rescaled between 1 and 2.
Each operation's time from the command to RUNNING again is printed (pytest -s) for docs/job-operations.md."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from streamctl.exit_codes import ExitCode
from streamctl.flink import config as flink_config  # JOB_FILE: the job file the submitter loads
from tests.integration.stackutil import (
    TEST_PORTS, Poster, assert_exact, cli, completed_checkpoints, get, make_stack_config, pg_connect, restored_from, running_stack,
    settings_of, validate_json, wait_for,
)

pytestmark = pytest.mark.integration

API = f"http://127.0.0.1:{TEST_PORTS['producer']}"
TIMINGS: dict[str, float] = {}
# Short windows: shorter waits for the last one to close. `upgrade` is refused a new size, `--replay` takes it.
WINDOW_S, UPGRADED_WINDOW_S = 5, 10


@pytest.fixture(scope="module")
def stack():
    with running_stack("it-jobops", kafka={"partitions": 3},
                       flink={"window_seconds": WINDOW_S, "checkpoint_interval_seconds": 5,
                              "taskmanagers": 2, "slots_per_taskmanager": 1}) as config:
        yield config
    print("\njob operation timings (command start to RUNNING again):", json.dumps(TIMINGS))


def job(stack, capsys, *args: str) -> tuple[int, dict]:
    """`streamctl job ... --json` in-process: exit status and its JSON (or {} when it failed)."""
    capsys.readouterr()
    code = cli(stack, "job", *args, "--json")
    out = capsys.readouterr()
    try:
        return code, json.loads(out.out)
    except ValueError:
        return code, {"error": out.err}


def timed(name: str, stack, capsys, *args: str) -> dict:
    code, result = job(stack, capsys, *args)
    assert code == ExitCode.OK, result
    TIMINGS[name] = result.get("seconds", 0)
    return result


def set_setting(stack, section: str, key: str, value) -> None:
    config = yaml.safe_load(stack.read_text())
    config.setdefault(section, {})[key] = value
    stack.write_text(yaml.safe_dump(config))


def test_job_status_reports_state_parallelism_checkpoints_lag_and_watermark(stack, capsys):
    with Poster(API, threads=2) as poster:
        poster.wait_for_more(50)  # some records, then a checkpoint that holds them (every 5 s here)
        taken = completed_checkpoints(stack)
        wait_for(lambda: completed_checkpoints(stack) > taken, 60, what="a checkpoint after the first records")
    code, report = job(stack, capsys, "status")
    assert code == ExitCode.OK, report
    assert report["state"] == "RUNNING" and report["parallelism"] == 2 and report["uptime_s"] > 0
    assert report["last_checkpoint"]["age_s"] < 30 and report["last_checkpoint"]["size_bytes"] > 0
    assert sorted(p["partition"] for p in report["source_lag"]) == [0, 1, 2]
    assert sum(p["end_offset"] for p in report["source_lag"]) > 0
    assert report["watermark_delay_s"] is not None and 0 < report["watermark_delay_s"] < 60
    # The job keeps up with two posting threads: seconds of ingest not read, well under "falling behind".
    assert report["lag_s"] is not None and 0 <= report["lag_s"] < 5 and report["falling_behind"] is False
    assert report["vertices"] and all(v["backpressure"] in ("ok", "low", "high", "unknown")
                                      for v in report["vertices"])


def test_savepoint_stop_and_resume_under_load_lose_nothing(stack, capsys):
    with Poster(API, retries=True) as poster:
        poster.wait_for_more(50)
        taken = timed("savepoint", stack, capsys, "savepoint")
        code, listed = job(stack, capsys, "savepoints")
        assert taken["location"] in [s["location"] for s in listed]
        timed("stop", stack, capsys, "stop")
        assert job(stack, capsys, "status")[0] == ExitCode.JOB_STATE  # not running
        poster.wait_for_more(100)  # the API keeps accepting into Kafka while the job is stopped
        assert job(stack, capsys, "stop")[1]["location"] is None  # idempotent: nothing to stop
        timed("resume (stop to RUNNING)", stack, capsys, "resume")
        poster.wait_for_more(50)
    assert set(poster.statuses) == {201}, poster.statuses  # not one request refused meanwhile
    assert restored_from(stack).get("is_savepoint") is True
    assert_exact(stack, capsys, "120s")


def test_rescale_2_to_1_to_2_under_load_and_refusal_beyond_the_slots(stack, capsys):
    with Poster(API, retries=True) as poster:
        poster.wait_for_more(50)
        timed("rescale to 1", stack, capsys, "rescale", "--parallelism", "1")
        assert job(stack, capsys, "status")[1]["parallelism"] == 1
        poster.wait_for_more(50)
        timed("rescale to 2", stack, capsys, "rescale", "--parallelism", "2")
        assert job(stack, capsys, "status")[1]["parallelism"] == 2
        code, result = job(stack, capsys, "rescale", "--parallelism", "3")
        assert code == ExitCode.JOB_STATE and "offer 2 slots" in result["error"], result
        poster.wait_for_more(50)
    assert set(poster.statuses) == {201}, poster.statuses
    assert_exact(stack, capsys, "120s")


def test_upgrade_keeps_state_refuses_a_new_window_size_and_replay_rebuilds_it(stack, capsys):
    with Poster(API, retries=True) as poster:
        poster.wait_for_more(50)
        set_setting(stack, "flink", "checkpoint_interval_seconds", 4)  # compatible: same operators
        timed("upgrade", stack, capsys, "upgrade")
        assert restored_from(stack).get("is_savepoint") is True
        set_setting(stack, "flink", "window_seconds", UPGRADED_WINDOW_S)
        code, result = job(stack, capsys, "upgrade")
        assert code == ExitCode.JOB_STATE and f"window_seconds {WINDOW_S} -> {UPGRADED_WINDOW_S}" in result["error"], result
        assert job(stack, capsys, "status")[0] == ExitCode.OK  # refused before touching the running job
        timed("upgrade --replay", stack, capsys, "upgrade", "--replay")
        poster.wait_for_more(50)
    report = assert_exact(stack, capsys, "180s")
    assert all(w % (UPGRADED_WINDOW_S * 1000) == 0 for w in _window_starts(stack))  # every row a window of the new size
    assert report["topic"]["transactions"] > 0


def _window_starts(stack) -> list[int]:
    with pg_connect(stack) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT window_start FROM sales_summary")
        return [int(row[0].timestamp() * 1000) for row in cursor.fetchall()]


def test_replay_from_the_middle_repairs_tampered_windows_and_leaves_earlier_ones(stack, capsys):
    # Closed windows on both sides of the replay point. The tests before this one usually left enough;
    # run alone, it posts until there are.
    with Poster(API, threads=2):
        wait_for(lambda: len(set(_window_starts(stack))) >= 4, 150, interval_s=1, what="four closed windows")
    assert_exact(stack, capsys, "120s")
    starts = sorted(set(_window_starts(stack)))
    middle = starts[len(starts) // 2]
    with pg_connect(stack) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT window_start, category, updated_at FROM sales_summary WHERE window_start < "
                       "to_timestamp(%s / 1000.0)", (middle,))
        before = sorted(cursor.fetchall())
        cursor.execute("UPDATE sales_summary SET transaction_count = transaction_count + 1 WHERE window_start ="
                       " to_timestamp(%s / 1000.0)", (middle,))
        cursor.execute("INSERT INTO sales_summary SELECT window_start, window_end, 'Tampered', brand, payment_method,"
                       " currency, 1, 1, 1, 1 FROM sales_summary WHERE window_start = to_timestamp(%s / 1000.0)"
                       " LIMIT 1", (middle,))
    code, report = validate_json(stack, capsys, "--wait", "30s")
    assert code == ExitCode.CHECK_FAILED and report["verdict"] == "mismatch"
    moment = datetime.fromtimestamp(middle / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = timed("replay --from the middle", stack, capsys, "replay", "--from", moment)
    assert "erased from" in result["detail"]
    assert_exact(stack, capsys, "180s")
    with pg_connect(stack) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT window_start, category, updated_at FROM sales_summary WHERE window_start < "
                       "to_timestamp(%s / 1000.0)", (middle,))
        assert sorted(cursor.fetchall()) == before  # windows before the replay point untouched


def test_a_savepoint_of_the_job_before_retryrule_is_refused_in_one_line_then_replay_moves_on(stack, capsys,
                                                                                             monkeypatch):
    """A stack upgraded from the release before RetryRule: its job (the SQL OVER window; that release's
    stack/flink/job.py, kept as a fixture) stopped with a savepoint, its records written as that release
    wrote them (no state format). `job resume` and `up` refuse in one line naming `job upgrade --replay`,
    before anything is submitted; `job upgrade --replay` then runs this job from the topic, exact."""
    timed("stop before the old job", stack, capsys, "stop")
    monkeypatch.setattr(flink_config, "JOB_FILE", Path(__file__).parent / "fixtures" / "job_state_format_1.py")
    timed("the release before: replay --all", stack, capsys, "replay", "--all")
    with Poster(API, threads=2):
        wait_for(lambda: completed_checkpoints(stack) >= 2, 60, what="two checkpoints of the old job")
    old = timed("the release before: stop with a savepoint", stack, capsys, "stop")
    monkeypatch.undo()
    flink_dir = settings_of(stack).stack_dir / "flink"
    rules = json.loads((flink_dir / "job-rules.json").read_text())
    (flink_dir / "job-rules.json").write_text(json.dumps({job_id: {k: v for k, v in r.items() if k != "state_format"}
                                                          for job_id, r in rules.items()}))
    submitted = json.loads((flink_dir / "job.json").read_text())
    submitted.pop("state_format")
    (flink_dir / "job.json").write_text(json.dumps(submitted))
    overview_before = get(f"http://127.0.0.1:{TEST_PORTS['flink_rest']}/jobs/overview")[1]

    code, result = job(stack, capsys, "resume")
    assert code == ExitCode.JOB_STATE, result
    assert "earlier version of the job" in result["error"] and "job upgrade --replay" in result["error"]
    assert old["location"].rstrip("/").rsplit("/", 1)[-1] in result["error"]
    assert "Traceback" not in result["error"] and result["error"].count("\n") <= 2
    capsys.readouterr()
    assert cli(stack, "up") == ExitCode.JOB_STATE
    err = capsys.readouterr().err
    assert "earlier version of the job" in err and "job upgrade --replay" in err and "Traceback" not in err
    assert get(f"http://127.0.0.1:{TEST_PORTS['flink_rest']}/jobs/overview")[1] == overview_before  # nothing submitted

    timed("upgrade --replay from the old job's stack", stack, capsys, "upgrade", "--replay")
    assert_exact(stack, capsys, "120s")


def test_job_commands_that_cannot_run_say_why_in_one_line(stack, capsys, tmp_path):
    code, result = job(stack, capsys, "resume", "--from", "/nonexistent/savepoint-1")
    assert code == ExitCode.OK and "already RUNNING" in result["detail"]  # running: nothing to resume
    timed("stop before the refusals", stack, capsys, "stop")
    code, result = job(stack, capsys, "resume", "--from", "/nonexistent/savepoint-1")
    assert code == ExitCode.USAGE and "does not exist" in result["error"], result
    for args in (("savepoint",), ("rescale", "-p", "1"), ("upgrade",)):
        code, result = job(stack, capsys, *args)
        assert code == ExitCode.JOB_STATE and "the job is FINISHED" in result["error"], (args, result)
        assert "Traceback" not in result["error"] and result["error"].count("\n") <= 2
    timed("resume after the refusals", stack, capsys, "resume")
    # a stack whose services are not running, on ports nothing listens on
    down = make_stack_config("it-jobops-down", ports={name: port + 1000 for name, port in TEST_PORTS.items()})
    try:
        settings_of(down).stack_dir.mkdir(parents=True)
        capsys.readouterr()
        assert cli(down, "job", "status") == ExitCode.UNAVAILABLE
        assert "does not answer" in capsys.readouterr().err
    finally:  # its state directory, under /tmp, was left behind by every run
        shutil.rmtree(down.parent, ignore_errors=True)
