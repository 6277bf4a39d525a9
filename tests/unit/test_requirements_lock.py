"""requirements.lock pins every Python package streamctl and its tests need, each with hashes."""

from __future__ import annotations

import re
import tomllib

from streamctl.paths import PROJECT_ROOT


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, tuple[str, int]]:
    text = (PROJECT_ROOT / "requirements.lock").read_text()
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s\\;]+)", block)
        if match:
            entries[normalise(match.group(1))] = (match.group(2), block.count("--hash=sha256:"))
    return entries


def test_every_declared_dependency_is_pinned_with_hashes():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    pins = locked()
    for requirement in declared:
        name = normalise(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))
        assert name in pins, f"{name} is not in requirements.lock (run `make lock`)"
    assert all(hashes >= 1 for _, hashes in pins.values()), [n for n, (_, h) in pins.items() if h == 0]
    assert len(pins) > 50  # the whole closure, not only the direct dependencies
