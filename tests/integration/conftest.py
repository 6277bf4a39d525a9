"""What the integration tests share: one single-node local stack for every module that needs only a
healthy default stack, and the order that lets them share it.

A module opts in with a module fixture `stack` returning `shared_stack`. Every test on the shared stack
runs before the other integration tests (which start stacks of their own on the same ports): first those
that leave it as they found it, then the `destructive` ones (outages, kills), then the `ends_stack` one
(down, up, down --purge). The stack is taken down right after its last test, not at the end of the session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.stackutil import SHARED_STACK_NAME, SHARED_WINDOW_S, cli, make_stack_config


class SharedStack:
    """The shared stack's config, brought up on first use and taken down once, by the order's last user."""

    def __init__(self) -> None:
        self.config: Path | None = None
        self.closed = False

    def open(self) -> Path:
        if self.closed:
            raise RuntimeError("the shared stack was already taken down: a test that uses it ran after its "
                               "last user (see pytest_collection_modifyitems in tests/integration/conftest.py)")
        if self.config is None:
            self.config = make_stack_config(SHARED_STACK_NAME, window_seconds=SHARED_WINDOW_S)
            assert cli(self.config, "up", "--runtime", "local") == 0, "the shared stack did not come up"
        return self.config

    def close(self) -> None:
        if self.config is not None and not self.closed:
            cli(self.config, "down", "--purge")
            shutil.rmtree(self.config.parent, ignore_errors=True)
        self.closed = True


_SHARED = SharedStack()


@pytest.fixture(scope="session")
def shared_stack() -> Path:
    """The config of the single-node local stack shared by the modules that only need a healthy one."""
    return _SHARED.open()


def _uses_shared_stack(item: pytest.Item) -> bool:
    return "shared_stack" in getattr(item, "fixturenames", ())


def _rank(item: pytest.Item) -> int:
    if not _uses_shared_stack(item):
        return 3
    if item.get_closest_marker("ends_stack"):
        return 2
    return 1 if item.get_closest_marker("destructive") else 0


def pytest_collection_modifyitems(session, config, items):
    # A stable sort: within a rank, the collection order (module by module, test by test) stays.
    items.sort(key=_rank)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    # Free the shared stack's ports for the modules that start their own stacks on them.
    if _uses_shared_stack(item) and (nextitem is None or not _uses_shared_stack(nextitem)):
        _SHARED.close()


def pytest_sessionfinish(session, exitstatus):
    _SHARED.close()  # an interrupted run still takes the shared stack down
