"""The stack as data: which services exist, what each depends on, which ports it binds.

Runtime-neutral: the local runtime and the Docker runtime both start these services in this order
and provision them the same way; each runtime only knows how to run one service.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from streamctl.config import Settings, broker_ports
from streamctl.errors import StreamctlError

SERVICE = "service"  # a long-running process or container
TASK = "task"  # a provisioning step that runs once per `up` (idempotent)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    description: str
    depends_on: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()  # names in settings.ports that this service binds
    kind: str = SERVICE
    role: str = ""  # what runs it (the runtime's class for it); empty: the name
    instance: int = 0  # 1..N when the settings ask for several of this role, else 0

    @property
    def runs_as(self) -> str:
        return self.role or self.name


STACK: tuple[ServiceSpec, ...] = (
    ServiceSpec("postgres", "PostgreSQL (sales_summary)", (), ("postgres",)),
    ServiceSpec("kafka", "Kafka broker, KRaft", (), ("kafka", "kafka_controller")),
    ServiceSpec("elasticsearch", "Elasticsearch (transactions-aggregated)", (),
                ("elasticsearch", "elasticsearch_transport")),
    ServiceSpec("flink-jobmanager", "Flink JobManager (REST/UI)", (), ("flink_rest", "flink_rpc")),
    # Started beside the JobManager, not after it: it keeps retrying until it registers.
    ServiceSpec("flink-taskmanager", "Flink TaskManager", (), ()),
    ServiceSpec("topics", "Kafka topics", ("kafka",), kind=TASK),
    ServiceSpec("schema", "database and sales_summary table", ("postgres",), kind=TASK),
    ServiceSpec("index-template", "Elasticsearch index template", ("elasticsearch",), kind=TASK),
    ServiceSpec("producer", "producer REST API", ("topics",), ("producer",)),
    ServiceSpec("indexer", "Elasticsearch indexer", ("topics", "index-template"), ()),
    # Submitted once the JobManager answers; it then waits for the TaskManager's slots to run.
    ServiceSpec("flink-job", "aggregation job RUNNING", ("topics", "schema", "flink-jobmanager"), kind=TASK),
)


# Roles that the settings may multiply (kafka.brokers, flink.taskmanagers).
SCALED_ROLES = {"kafka": lambda s: s.kafka.brokers, "flink-taskmanager": lambda s: s.flink.taskmanagers}


# What streamctl runs itself when the clusters are someone else's (the external runtime).
OWN_PROCESSES = ("producer", "indexer")


def stack(settings: Settings, runtime: str = "local") -> tuple[ServiceSpec, ...]:
    """The stack as these settings ask for it: a role that runs N times becomes `role-1`..`role-N`,
    and whatever depended on the role depends on every instance. On the external runtime: only
    streamctl's own processes and the provisioning steps, depending on nothing outside."""
    if runtime == "external":
        kept = [s for s in STACK if s.kind == TASK or s.name in OWN_PROCESSES]
        own = {s.name for s in kept}
        return tuple(replace(s, depends_on=tuple(d for d in s.depends_on if d in own)) for s in kept)
    instances: dict[str, list[str]] = {}
    specs: list[ServiceSpec] = []
    for spec in STACK:
        count = SCALED_ROLES[spec.name](settings) if spec.name in SCALED_ROLES else 1
        if count == 1:
            instances[spec.name] = [spec.name]
            specs.append(spec)
            continue
        names = [f"{spec.name}-{n}" for n in range(1, count + 1)]
        instances[spec.name] = names
        specs += [replace(spec, name=name, description=f"{spec.description} {n}/{count}", role=spec.name, instance=n)
                  for n, name in enumerate(names, 1)]
    return tuple(replace(spec, depends_on=tuple(i for dep in spec.depends_on for i in instances.get(dep, [dep])))
                 for spec in specs)


def spec_ports(settings: Settings, spec: ServiceSpec) -> list[tuple[str, int]]:
    """(setting name, port) for each port the service binds; a further broker's are derived."""
    if spec.runs_as == "kafka" and spec.instance > 1:
        client, controller = broker_ports(settings, spec.instance)
        return [("kafka", client), ("kafka_controller", controller)]
    return [(name, getattr(settings.ports, name)) for name in spec.ports]


def services_only(specs: tuple[ServiceSpec, ...] = STACK) -> list[ServiceSpec]:
    return [s for s in specs if s.kind == SERVICE]


class DependencyCycle(StreamctlError):
    pass


def by_name(specs: tuple[ServiceSpec, ...] = STACK) -> dict[str, ServiceSpec]:
    return {s.name: s for s in specs}


def start_order(specs: tuple[ServiceSpec, ...] = STACK) -> list[ServiceSpec]:
    """Topological order (dependencies first), stable with respect to the declared order."""
    names = by_name(specs)
    for spec in specs:
        for dep in spec.depends_on:
            if dep not in names:
                raise StreamctlError(f"service {spec.name} depends on unknown service {dep}")
    ordered: list[ServiceSpec] = []
    state: dict[str, str] = {}

    def visit(spec: ServiceSpec, path: list[str]) -> None:
        if state.get(spec.name) == "done":
            return
        if state.get(spec.name) == "visiting":
            cycle = path[path.index(spec.name):] + [spec.name]
            raise DependencyCycle(f"dependency cycle: {' -> '.join(cycle)}", hint="fix depends_on")
        state[spec.name] = "visiting"
        for dep in spec.depends_on:
            visit(names[dep], path + [spec.name])
        state[spec.name] = "done"
        ordered.append(spec)

    for spec in specs:
        visit(spec, [])
    return ordered


def stop_order(specs: tuple[ServiceSpec, ...] = STACK) -> list[ServiceSpec]:
    """Dependents first: the reverse of the start order."""
    return list(reversed(start_order(specs)))
