"""One sequence for every runtime: `up`, `down` and `status` over the stack model.

A runtime only checks its own preconditions, starts, stops and inspects its services, and says
where they answer (`Runtime`, in `runtimes/model.py`). Everything else happens here, once: the order (dependencies
first, independent steps in parallel), the provisioning steps, the job's restore policy, the
savepoint before anything stops, the job state and consumer lag that `status` reports.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import time
from typing import Callable

from streamctl import kibana, provision
from streamctl.config import Settings
from streamctl.endpoints import Endpoints
from streamctl.errors import StartupError, StreamctlError
from streamctl.flink import operations
from streamctl.flink.placement import placement_of
from streamctl.flink.rest import find_job
from streamctl.kafka_info import lag_report
from streamctl.names import StackNames
from streamctl.parallel import run_graph
from streamctl.pipeline.job_lag import JobLag, job_lag
from streamctl.runtimes.model import NO_PROGRESS, Progress, Runtime, StackStatus, UpResult
from streamctl.services import TASK, ServiceSpec, services_only, stop_order

# -- companions -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Companion:
    """A process that lives beside a stack on any runtime and is no part of it (the live view): `up`
    starts it last, `down` stops it first. The layer above registers it with `attach`: the core knows
    no viewer."""

    label: str  # its line in up's addresses
    name: str  # its line in down's results
    ensure_running: Callable[[Settings], str]  # -> its address
    running: Callable[[Settings], bool]
    stop: Callable[[Settings], str]
    fallback: str  # what serves instead when it cannot start


COMPANIONS: list[Companion] = []


def attach(companion: Companion) -> None:
    if companion not in COMPANIONS:
        COMPANIONS.append(companion)


# -- up ---------------------------------------------------------------------------------------------

def up(runtime: Runtime, progress: Progress = NO_PROGRESS, fetch: Callable[[], None] | None = None,
       with_live_view: bool = True) -> UpResult:
    """Start what is not running, provision, make sure the job runs, start the companions (the live
    view; with_live_view=False leaves them out), report the addresses."""
    with runtime.exclusive():
        result = start(runtime, progress, fetch)
        runtime.after_up()
        for companion in COMPANIONS if with_live_view else ():
            try:
                result.endpoints[companion.label] = companion.ensure_running(runtime.settings)
            except StreamctlError as error:  # the stack is up; only its page is not
                hint = f" ({error.hint})" if error.hint else ""
                result.notes.append(f"{companion.label} not started: {error}{hint}; {companion.fallback}")
            except OSError as error:
                result.notes.append(f"{companion.label} not started: {error}; {companion.fallback}")
    return result


def start(runtime: Runtime, progress: Progress = NO_PROGRESS, fetch: Callable[[], None] | None = None) -> UpResult:
    """`up` without the stack lock and the after-up hook: what a restart policy calls, holding the lock."""
    started_at = time.monotonic()
    result = UpResult(seconds=0, notes=runtime.preflight(fetch, progress))

    def step(spec: ServiceSpec) -> None:
        if spec.kind == TASK:
            progress.update(spec.name, "running")
            progress.update(spec.name, "ready", run_task(runtime, spec.name, progress))
            return
        already = runtime.start(spec, progress)
        (result.already_running if already else result.started).append(spec.name)

    outcome = run_graph(runtime.specs, step,
                        lambda spec, root: progress.update(spec.name, "skipped", f"{root} failed"))
    if not outcome.ok:
        name, error = next(iter(outcome.failed.items()))
        if not isinstance(error, StreamctlError):
            error = StartupError(f"{name} failed: {type(error).__name__}: {error}", hint=f"see `streamctl logs {name}`")
        if outcome.upstream_failed:
            error.hint = (error.hint + "; " if error.hint else "") + \
                f"not started because of it: {', '.join(sorted(outcome.upstream_failed))}"
        raise error
    result.seconds = time.monotonic() - started_at
    result.endpoints = runtime.addresses()
    return result


# -- provisioning steps ----------------------------------------------------------------------------
# One function per provisioning step of the model (services.py, kind TASK), idempotent, run from this
# machine the same way on every runtime. A new step is a function here, registered by `@step(name)`
# under the name of its TASK in the model.

StepFunction = Callable[[Runtime, Endpoints, Progress], str]
STEPS: dict[str, StepFunction] = {}


def step(name: str) -> Callable[[StepFunction], StepFunction]:
    """Register the function of the model's provisioning step `name` (one function per step)."""
    def register(function: StepFunction) -> StepFunction:
        if name in STEPS:
            raise TypeError(f"two functions for the provisioning step {name}: {STEPS[name].__name__} and"
                            f" {function.__name__}")
        STEPS[name] = function
        return function
    return register


@step("topics")
def _topics(runtime: Runtime, endpoints: Endpoints, progress: Progress) -> str:
    s = runtime.settings
    replication, min_isr = provision.topic_replication(runtime)
    created = provision.create_topics(
        endpoints.kafka, provision.topic_layout(s.kafka.topic, s.kafka.aggregates_topic, min_isr),
        s.kafka.partitions, replication)
    return (f"created {', '.join(created)}" + (f" (x{replication})" if replication > 1 else "")) if created \
        else "present"


@step("schema")
def _schema(runtime: Runtime, endpoints: Endpoints, progress: Progress) -> str:
    if runtime.owns_clusters:  # streamctl's own server: the database too
        provision.apply_schema(dataclasses.replace(endpoints.postgres, database="postgres").dsn(),
                               endpoints.postgres.database)
    else:
        provision.apply_schema_in(endpoints.postgres)
    return f"{endpoints.postgres.database}.sales_summary ready"


@step("index-template")
def _index_template(runtime: Runtime, endpoints: Endpoints, progress: Progress) -> str:
    index = runtime.settings.elasticsearch.index
    provision.install_index_template(endpoints.elasticsearch, index)
    return f"{index} ready"


@step("kibana-objects")
def _kibana_objects(runtime: Runtime, endpoints: Endpoints, progress: Progress) -> str:
    return kibana.import_saved_objects(endpoints.kibana_url)


@step("flink-job")
def _flink_job(runtime: Runtime, endpoints: Endpoints, progress: Progress) -> str:
    return operations.ensure_running(placement_of(runtime), progress)[1]


def run_task(runtime: Runtime, name: str, progress: Progress = NO_PROGRESS) -> str:
    """One provisioning step (idempotent), from this machine, the same on every runtime."""
    endpoints = runtime.endpoints()
    function = STEPS.get(name)
    if function is None:
        raise StreamctlError(f"unknown provisioning step {name}")
    return function(runtime, endpoints, progress)


# -- down -------------------------------------------------------------------------------------------

def down(runtime: Runtime, purge: bool = False, progress: Progress = NO_PROGRESS) -> list[tuple[str, str]]:
    """The job stopped with a savepoint, then every service in reverse dependency order; the data
    only with `purge`, which takes no savepoint and stops every service at once: nothing is kept.
    Goes on whatever the savepoint's outcome."""
    runtime.before_down(purge)
    results: list[tuple[str, str]] = []
    for companion in COMPANIONS:
        if companion.running(runtime.settings):
            results.append((companion.name, companion.stop(runtime.settings)))
    if purge:
        results.append(("flink-job", "no savepoint: --purge deletes the job's state with the rest"))
    elif runtime.running("flink-jobmanager"):
        results.append(("flink-job", operations.stop_for_down(lambda: placement_of(runtime),
                                                              runtime.settings.flink.savepoints_kept, progress)))

    def stop(spec: ServiceSpec) -> tuple[str, str]:
        progress.update(spec.name, "stopping")
        outcome = runtime.stop(spec, progress)
        progress.update(spec.name, "stopped", outcome)
        return spec.name, outcome

    services = [s for s in stop_order(runtime.specs) if s.kind != TASK]
    if purge:  # nothing is kept, so no order protects anything: everything stops at once
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
            results.extend(pool.map(stop, services))
        return results + runtime.release(purge, progress)
    # Instances of one role stop together: the last KRaft node alone would wait for a quorum.
    for _, group in itertools.groupby(services, key=lambda spec: spec.runs_as):
        with concurrent.futures.ThreadPoolExecutor() as pool:
            results.extend(pool.map(stop, list(group)))
    return results + runtime.release(purge, progress)


# -- status -----------------------------------------------------------------------------------------

def status(runtime: Runtime) -> StackStatus:
    services = [runtime.inspect(spec) for spec in services_only(runtime.specs)]
    names = StackNames.of(runtime.settings)
    job_state, lag = "STOPPED", JobLag(None, "no running job")
    if runtime.running("flink-jobmanager"):
        flink_url = runtime.endpoints().flink_url
        try:
            job = find_job(flink_url, names.job_name)
            job_state = job.state if job else "NOT SUBMITTED"
        except (OSError, ValueError):
            job_state = "UNREACHABLE"
        if job_state == "RUNNING":
            lag = job_lag(flink_url, names.job_name, runtime.settings.flink.watermark_delay_seconds * 1000)
    lags: list[dict] = []
    if runtime.running("kafka"):
        try:
            lags = [dataclasses.asdict(lag) for lag in lag_report(runtime.endpoints().kafka,
                                                                  names.lag_groups(runtime.settings))]
        except Exception as exc:  # status reports; it does not fail on a broker that is not answering
            lags = [{"error": f"{type(exc).__name__}: {exc}"}]
    return StackStatus(runtime.name, services, job_state, lags, lag.seconds, lag.falling_behind)

