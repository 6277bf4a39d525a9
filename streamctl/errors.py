"""Domain errors: each carries its exit code and a hint on how to fix it.

The CLI prints them as one line plus the hint; the core raises them and never prints.
"""

from __future__ import annotations

from streamctl.exit_codes import ExitCode


class StreamctlError(Exception):
    exit_code: ExitCode = ExitCode.INTERNAL_ERROR

    def __init__(self, message: str, hint: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # e.g. the last lines of a service log


class ConfigError(StreamctlError):
    exit_code = ExitCode.CONFIG_ERROR


class UsageError(StreamctlError):
    """The command line names something that does not exist (a service, a stack)."""

    exit_code = ExitCode.USAGE


class PreflightError(StreamctlError):
    exit_code = ExitCode.PREFLIGHT_FAILED


class ArtifactError(StreamctlError):
    exit_code = ExitCode.ARTIFACT_ERROR


class StartupError(StreamctlError):
    exit_code = ExitCode.STARTUP_FAILED


class ServiceUnavailable(StreamctlError):
    exit_code = ExitCode.UNAVAILABLE


class JobStateError(StreamctlError):
    """The job is not in a state that allows the operation (`streamctl job ...`)."""

    exit_code = ExitCode.JOB_STATE
