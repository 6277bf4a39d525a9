"""The stack as data: which services exist, what each depends on, which ports it binds.

Runtime-neutral: the local runtime and the Docker runtime both start these services in this order
and provision them the same way; each runtime only knows how to run one service.
"""

from __future__ import annotations

from dataclasses import dataclass

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
