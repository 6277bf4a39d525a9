"""The PyFlink client inside this process: the job is planned and submitted through PyFlink's Java
gateway, one JVM started on this process's first submission and kept for its next ones.

`flink run -py` started a JVM and a Python process for every submission and planned the job in a cold
JVM: about 9.5 s from the command to the JobManager receiving the job. A warm gateway plans and
submits a later one in about 2.5 s (measured on the same two-core machine), which every operation
that submits several times in one process (`job rescale`, `job upgrade --replay`, the watchdog, the
test suite) gains.

The gateway's classpath is the package's lib/ plus the locked connectors (the planner looks up the
Kafka and JDBC factories), linked once under the cache directory: the JVM may load a class from any
of them long after the stack that first submitted is gone. Each submission gets the client's Flink
configuration (the stack's conf/config.yaml, as `flink run` read it), so the gateway itself is stack-free.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

from streamctl.errors import StartupError

SUBMIT_TIMEOUT_S = 180  # a ceiling: planning and submitting took 2.5-10 s (measured)

_lock = threading.Lock()  # one submission at a time, and one gateway per process
_process: subprocess.Popen | None = None  # the gateway's JVM, ours to stop


def link_client_lib(cache_dir: Path, jars: list[Path]) -> Path:
    """A directory of links to `jars`, named by them: created once (atomically), shared by every stack."""
    key = hashlib.sha256("\n".join(sorted(str(jar) for jar in jars)).encode()).hexdigest()[:16]
    lib = cache_dir / "flink-client" / f"lib-{key}"
    if lib.is_dir():
        return lib
    partial = lib.with_name(f"{lib.name}.{os.getpid()}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    for jar in jars:
        link = partial / jar.name
        if not link.is_symlink():
            link.symlink_to(jar)
    try:
        partial.rename(lib)
    except OSError:  # another process linked it first: theirs holds the same jars
        for link in partial.iterdir():
            link.unlink()
        partial.rmdir()
    return lib


def _start(flink_home: Path, lib: Path, java_home: Path, log_dir: Path) -> None:
    """The gateway's JVM, started by us (so that we can drain its stderr and stop it) with PyFlink's own
    launcher; PyFlink's get_gateway() then connects to it by its port."""
    global _process
    if _process is not None and _process.poll() is None:
        return
    from pyflink.pyflink_gateway_server import launch_gateway_server_process

    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="streamctl-gateway-") as handshake:
        port_file = Path(handshake) / "port"
        env = {**os.environ,
               "FLINK_HOME": str(flink_home),  # without it PyFlink points FLINK_LIB_DIR back at the package
               "FLINK_CONF_DIR": str(flink_home / "conf"),  # the package's JVM options (Java 17's --add-opens)
               "FLINK_LIB_DIR": str(lib),
               "FLINK_LOG_DIR": str(log_dir),
               "JAVA_HOME": str(java_home),
               # C1 alone and one GC thread: during `up`, beside four starting JVMs, the cold submission
               # took 9.3 s instead of 12.8 s; warm ones took the same 1.4-1.9 s (measured).
               "JVM_ARGS": "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
               "_PYFLINK_CONN_INFO_PATH": str(port_file)}
        process = launch_gateway_server_process(env, ["-c", "org.apache.flink.client.python.PythonGatewayServer",
                                                      "local"])
        threading.Thread(target=_drain, args=(process, log_dir / "gateway.err"), daemon=True).start()
        deadline = time.monotonic() + 60
        while not port_file.is_file() or port_file.stat().st_size < 4:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise StartupError("the Flink client's JVM did not start",
                                   details=tail(log_dir / "gateway.err"), hint=f"its log: {log_dir}")
            time.sleep(0.05)
        port = struct.unpack("!I", port_file.read_bytes()[:4])[0]
    os.environ["PYFLINK_GATEWAY_PORT"] = str(port)
    _process = process
    from pyflink.java_gateway import get_gateway

    get_gateway()


def _drain(process: subprocess.Popen, log: Path) -> None:
    """The JVM's stderr into a file: a pipe nobody reads would block it once full."""
    assert process.stderr is not None
    with log.open("ab") as out:
        for line in process.stderr:
            out.write(line)
            out.flush()


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def release() -> None:
    """Stop the gateway's JVM (the next submission starts another): for a long-lived process that
    submits rarely (the watchdog), and after a submission that hung or lost its JVM."""
    global _process
    import pyflink.java_gateway as java_gateway

    if java_gateway._gateway is not None:  # PyFlink keeps its connection in a module global
        try:
            java_gateway._gateway.close(keep_callback_server=False)
        except Exception:  # noqa: BLE001 - a dead JVM's connection cannot close cleanly; it is dropped anyway
            pass
        java_gateway._gateway = None
    os.environ.pop("PYFLINK_GATEWAY_PORT", None)
    if _process is not None:
        if _process.stdin is not None:
            _process.stdin.close()  # PythonGatewayServer exits when its stdin ends
        try:
            _process.wait(10)
        except subprocess.TimeoutExpired:
            _process.kill()
            _process.wait()
        _process = None


def _load(job_file: Path) -> ModuleType:
    """The job file as a module, read afresh for each submission (an edited job.py is submitted as edited)."""
    spec = importlib.util.spec_from_file_location("streamctl_flink_job", job_file)
    if spec is None or spec.loader is None:
        raise StartupError(f"cannot load the Flink job {job_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def submit(job_file: Path, job: dict, flink_configuration: dict[str, str], *, flink_home: Path, lib: Path,
           java_home: Path, log_dir: Path) -> str:
    """Plan `job_file`'s job with `job` (job.json's content) and submit it detached; its job id."""
    from py4j.protocol import Py4JError, Py4JJavaError

    with _lock:
        _start(flink_home, lib, java_home, log_dir)
        module = _load(job_file)
        outcome: list = []

        def plan_and_submit() -> None:
            try:
                outcome.append(str(module.submit_detached(job, flink_configuration)))
            except Exception as error:  # noqa: BLE001 - handed to the waiting thread below
                outcome.append(error)

        worker = threading.Thread(target=plan_and_submit, daemon=True)
        worker.start()
        worker.join(SUBMIT_TIMEOUT_S)
        if worker.is_alive():
            release()  # its JVM stopped, the hung call ends with it
            raise StartupError(f"submitting the Flink job did not finish in {SUBMIT_TIMEOUT_S} s",
                               hint="is the JobManager's REST address answering? `streamctl status`")
        result = outcome[0]
        if isinstance(result, Py4JJavaError):
            raise StartupError("submitting the Flink job failed", details=java_message(result)) from None
        if isinstance(result, Py4JError):  # the JVM is gone (killed, out of memory): the next call starts one
            release()
            raise StartupError(f"the Flink client's JVM stopped answering: {result}",
                               hint="run the command again; it starts a new client") from None
        if isinstance(result, Exception):
            raise result
        return result


def java_message(error: Exception) -> str:
    """The Java exception's causes, one line each, without the stack frames."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith(("at ", "..."))]
    return "\n".join(lines[-20:])
