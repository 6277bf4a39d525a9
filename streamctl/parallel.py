"""Run one task per step as soon as all its dependencies are done; a failure fails its dependents
("upstream failed") instead of leaving them waiting. Runtime-neutral."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from streamctl.services import ServiceSpec, start_order


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)
    upstream_failed: dict[str, str] = field(default_factory=dict)  # step -> the failed dependency

    @property
    def ok(self) -> bool:
        return not self.failed and not self.upstream_failed


def run_graph(specs: list[ServiceSpec] | tuple[ServiceSpec, ...], task: Callable[[ServiceSpec], None],
              on_upstream_failed: Callable[[ServiceSpec, str], None] | None = None,
              max_workers: int = 8) -> Outcome:
    ordered = start_order(tuple(specs))
    outcome = Outcome()
    pending = {s.name: s for s in ordered}
    running: dict[Future, ServiceSpec] = {}
    blocked: dict[str, str] = {}

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        while pending or running:
            for name, spec in list(pending.items()):
                failed_dep = next((d for d in spec.depends_on if d in outcome.failed or d in blocked), None)
                if failed_dep is not None:
                    root = blocked.get(failed_dep, failed_dep)
                    blocked[name] = root
                    outcome.upstream_failed[name] = root
                    if on_upstream_failed:
                        on_upstream_failed(spec, root)
                    del pending[name]
                elif all(d in outcome.done for d in spec.depends_on):
                    running[pool.submit(task, spec)] = spec
                    del pending[name]
            if not running:
                if pending:  # nothing runs and nothing can start: only possible if a dep never resolves
                    for name in pending:
                        outcome.upstream_failed[name] = "unresolved dependency"
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                spec = running.pop(future)
                error = future.exception()
                if error is None:
                    outcome.done.append(spec.name)
                else:
                    outcome.failed[spec.name] = error
    return outcome
