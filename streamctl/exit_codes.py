"""Every exit status streamctl returns, in one place (documented in docs/configuration.md, "Exit codes")."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # a check ran and failed: validate mismatch, load failure ratio, status not healthy
    UNAVAILABLE = 2  # a service needed for the command could not be reached
    CONFIG_ERROR = 3  # streamctl.yaml / STREAMCTL_* / flag values are invalid
    PREFLIGHT_FAILED = 4  # the machine is not ready: port taken, Java or PostgreSQL missing, low memory
    ARTIFACT_ERROR = 5  # download failed, checksum mismatch, cache incomplete in --offline mode
    STARTUP_FAILED = 6  # a service died or timed out while the stack was starting
    INCONCLUSIVE = 7  # validate could not judge every window (still open, a partition never written, empty topic)
    JOB_STATE = 8  # the Flink job is not in a state that allows the operation (not running, failing, refused upgrade)
    INTERNAL_ERROR = 70  # a bug in streamctl: rerun with --debug and report it
    USAGE = 64  # bad command line: unknown flag, missing argument
    INTERRUPTED = 130  # Ctrl-C
