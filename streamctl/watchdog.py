"""The local runtime's watchdog process: the restart policy of runtimes/local/watchdog.py over the
stack's own `up` (lifecycle.start). It is an entry point like the CLI, above the core and the runtimes:
`up` starts it, detached, one per stack, and `down` stops it first.

    python -m streamctl.watchdog --settings STACK_DIR/settings.yaml
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from streamctl import lifecycle
from streamctl.config import load_settings
from streamctl.flink import gateway
from streamctl.runtimes.local.runtime import LocalRuntime
from streamctl.runtimes.local.watchdog import log, watch
from streamctl.runtimes.select import stack_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", required=True, help="the stack's settings, as `up` wrote them")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    runtime = stack_runtime(load_settings(config_file=Path(args.settings), env={}))
    assert isinstance(runtime, LocalRuntime), "only the local and external runtimes have a watchdog"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("watching stack %s", runtime.settings.stack_name)
    def pids() -> dict[str, int | None]:
        return {s.name: (r.pid if (r := runtime.supervisor.record(s.name)) else None) for s in runtime.services}

    def restart() -> None:
        """The watchdog's `up`: it does not wait for another `up` (StackBusy) and starts no second watchdog."""
        with runtime.exclusive(wait=False):
            try:
                lifecycle.start(runtime)
            finally:  # a resubmission started the Flink client's JVM: not kept between rare restarts
                gateway.release()

    watch(runtime.crashed, restart, runtime.supervisor.run_dir, stop, pids=pids)
    log.info("stopped")


if __name__ == "__main__":
    main()
