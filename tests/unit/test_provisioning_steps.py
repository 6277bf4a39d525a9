"""Every provisioning step of the stack model has its one function in lifecycle, and nothing else does."""

from __future__ import annotations

import pytest

from streamctl import lifecycle
from streamctl.errors import StreamctlError
from streamctl.services import STACK, TASK


def test_each_provisioning_step_of_the_model_has_exactly_one_function():
    assert set(lifecycle.STEPS) == {s.name for s in STACK if s.kind == TASK}


def test_an_unknown_step_is_refused_by_name():
    class Nowhere:
        def endpoints(self):
            return None

    with pytest.raises(StreamctlError, match="unknown provisioning step nosuch"):
        lifecycle.run_task(Nowhere(), "nosuch")  # type: ignore[arg-type]


def test_a_step_registered_twice_is_refused():
    with pytest.raises(TypeError, match="two functions for the provisioning step topics"):
        lifecycle.step("topics")(lambda runtime, endpoints, progress: "again")
    assert lifecycle.STEPS["topics"].__name__ == "_topics"
