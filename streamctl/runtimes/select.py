"""Pick the runtime: `local` or `docker`, or `auto` (docker when an engine answers, else local)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from streamctl.config import Settings
from streamctl.errors import PreflightError, UsageError
from streamctl.recorded import RUNTIME_FILE, record_runtime, recorded_runtime  # noqa: F401  (known here first)

if TYPE_CHECKING:
    from streamctl.runtimes.model import Runtime



@dataclass(frozen=True)
class Choice:
    name: str
    reason: str


def docker_engine_answers() -> tuple[bool, str]:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True, f"a Docker engine answers at {client.api.base_url}"
    except Exception as exc:  # DockerException, connection refused, no socket
        return False, f"no Docker engine answers ({type(exc).__name__})"


def docker_runtime_available() -> bool:
    try:
        import streamctl.runtimes.docker.runtime  # noqa: F401
    except ImportError:
        return False
    return True


def choose(settings: Settings, requested: str | None = None) -> Choice:
    wanted = requested or settings.runtime
    recorded = recorded_runtime(settings.stack_dir)
    if wanted == "auto" and recorded:
        return Choice(recorded, f"stack {settings.stack_name!r} was brought up with the {recorded} runtime")
    if wanted in ("local", "external"):
        return Choice(wanted, "asked for")
    if wanted == "docker":
        if not docker_runtime_available():
            raise PreflightError("the docker runtime is not part of this version of streamctl",
                                 hint="use --runtime local")
        return Choice("docker", "asked for")
    answers, why = docker_engine_answers()
    if answers and docker_runtime_available():
        return Choice("docker", why)
    if answers:
        return Choice("local", f"{why}, but this version has no docker runtime")
    return Choice("local", why)


def stack_runtime(settings: Settings, must_exist: bool = True) -> Runtime:
    """The runtime of an existing stack (the one `up` recorded; local when none was recorded).
    A stack that was never brought up is a usage error naming the stacks there are."""
    if must_exist and not settings.stack_dir.is_dir():
        there = existing_stacks(settings.state_dir)
        raise UsageError(f"there is no stack named {settings.stack_name!r} in {settings.state_dir}",
                         hint=f"existing stacks: {', '.join(there)} (--stack NAME)" if there
                         else "create one with `streamctl up`")
    return runtime_for(settings, choose(settings, recorded_runtime(settings.stack_dir) or "local"))


def existing_stacks(state_dir: Path) -> list[str]:
    return sorted(p.name for p in state_dir.iterdir() if p.is_dir()) if state_dir.is_dir() else []


def runtime_for(settings: Settings, choice: Choice) -> Runtime:
    if choice.name == "external":
        from streamctl.runtimes.external.runtime import ExternalRuntime

        return ExternalRuntime(settings)
    if choice.name == "docker":
        from streamctl.runtimes.docker.runtime import DockerRuntime

        return DockerRuntime(settings)
    from streamctl.runtimes.local.runtime import LocalRuntime

    return LocalRuntime(settings)
