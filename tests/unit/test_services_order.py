from __future__ import annotations

import threading
import time

import pytest

from streamctl.parallel import run_graph
from streamctl.services import STACK, TASK, DependencyCycle, ServiceSpec, start_order, stop_order


def test_stack_order_puts_dependencies_first():
    order = [s.name for s in start_order()]
    for spec in STACK:
        for dep in spec.depends_on:
            assert order.index(dep) < order.index(spec.name)
    assert order.index("flink-job") > order.index("topics")


def test_stop_order_is_the_reverse():
    assert [s.name for s in stop_order()] == [s.name for s in reversed(start_order())]


def test_cycle_is_a_named_error():
    specs = (ServiceSpec("a", "", ("b",)), ServiceSpec("b", "", ("c",)), ServiceSpec("c", "", ("a",)))
    with pytest.raises(DependencyCycle, match="a -> b -> c -> a"):
        start_order(specs)


def test_unknown_dependency_is_an_error():
    with pytest.raises(Exception, match="unknown service"):
        start_order((ServiceSpec("a", "", ("ghost",)),))


def test_independent_steps_run_in_parallel_and_failures_block_dependents():
    specs = (ServiceSpec("slow1", ""), ServiceSpec("slow2", ""), ServiceSpec("broken", ""),
             ServiceSpec("after-slow", "", ("slow1", "slow2")), ServiceSpec("after-broken", "", ("broken",)),
             ServiceSpec("after-after", "", ("after-broken",), kind=TASK))
    running, peak, lock = set(), [0], threading.Lock()

    def task(spec):
        with lock:
            running.add(spec.name)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.2)
        with lock:
            running.discard(spec.name)
        if spec.name == "broken":
            raise RuntimeError("boom")

    skipped = []
    outcome = run_graph(specs, task, lambda spec, root: skipped.append((spec.name, root)))
    assert peak[0] >= 3
    assert set(outcome.done) == {"slow1", "slow2", "after-slow"}
    assert set(outcome.failed) == {"broken"}
    assert outcome.upstream_failed == {"after-broken": "broken", "after-after": "broken"}
    assert not outcome.ok
    assert ("after-after", "broken") in skipped
