"""The CPU profile the benchmarks print: a busy process and an idle one, told apart by thread."""

from __future__ import annotations

import subprocess
import sys
import time

from streamctl.bench.cpu import CpuWatch

BURN = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"


def test_the_watch_finds_the_busy_thread_and_not_the_sleeping_one():
    burner = subprocess.Popen([sys.executable, "-c", BURN.format(s=3)])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        time.sleep(0.3)
        watch = CpuWatch({"burner": [burner.pid], "sleeper": [sleeper.pid], "gone": [2**22 + 1]})
        time.sleep(1.5)
        cpu = watch.read()
    finally:
        burner.kill()
        sleeper.kill()
    busy, idle = cpu["by_service"]["burner"], cpu["by_service"]["sleeper"]
    assert busy["percent_of_one_core"] > 30, cpu  # one core, less what the machine's other work took
    assert idle["percent_of_one_core"] < 5, cpu
    assert list(cpu["by_service"])[0] == "burner"  # ranked busiest first
    assert sum(busy["busiest_threads"].values()) <= busy["percent_of_one_core"] + 1  # threads add up to the total
    assert cpu["machine_busy_percent_of_one_core"] >= busy["percent_of_one_core"] - 1
    assert cpu["by_service"]["gone"]["percent_of_one_core"] == 0  # a process that is not there costs nothing


def test_a_thread_that_ended_during_the_watch_still_counts_for_its_service():
    code = ("import threading, time\ntime.sleep(0.5)\n"
            f"t = threading.Thread(target=exec, args=({BURN.format(s=1)!r},)); t.start(); t.join()\ntime.sleep(3)")
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.2)
        watch = CpuWatch({"service": [process.pid]})
        time.sleep(2.0)  # the thread burned a second and ended
        cpu = watch.read()
    finally:
        process.kill()
    service = cpu["by_service"]["service"]
    assert service["percent_of_one_core"] > 25, cpu
    assert sum(service["busiest_threads"].values()) < 10, cpu  # the live threads alone would miss it


def test_a_stat_line_cut_short_reads_as_a_process_gone(tmp_path):
    """A thread ending while its stat is read can leave a short line: no IndexError out of a benchmark."""
    from streamctl.bench.cpu import _task_stat

    full = "4242 (C2 Compiler Thr) S " + " ".join(str(n) for n in range(1, 50))
    (tmp_path / "full").write_text(full)
    (tmp_path / "cut").write_text(full[:40])
    assert _task_stat(str(tmp_path / "full")) == ("C2 Compiler Thr", 11 + 12, 19)  # fields 14, 15 and 22 of proc(5)
    assert _task_stat(str(tmp_path / "cut")) is None
    assert _task_stat(str(tmp_path / "missing")) is None


def test_a_process_started_after_the_watch_counts_all_its_cpu():
    """`bench startup` watches services `up` starts: what each used before the watch knew it counts."""
    watch = CpuWatch({})
    burner = subprocess.Popen([sys.executable, "-c", BURN.format(s=1.5)])
    try:
        time.sleep(1.2)  # the burner ran all this time, unknown to the watch
        watch.count_from_start({"burner": [burner.pid]})
        cpu = watch.read()
    finally:
        burner.kill()
        burner.wait()
    assert cpu["by_service"]["burner"]["percent_of_one_core"] > 30, cpu
