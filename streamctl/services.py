"""The stack as data, once for every runtime: each service one object (ServiceSpec) with what it
depends on, which ports it binds (on this machine, and inside the containers' network), what "ready"
means for it (Readiness), how clients reach it and what `up` prints for it (Access), and which
runtimes run it; each provisioning step one object beside the service it provisions (kind TASK, its
function in lifecycle, registered under the same name by `@step`).

The local runtime launches these services as processes and polls their declared readiness; the
docker runtime derives its Compose project's `ports:` and `depends_on:` from them (stack/compose.yaml
holds only what a container needs: image, command, environment, and a healthcheck that tests the
declared readiness); the external runtime runs only streamctl's own processes. Endpoints derives the
addresses from the Access declarations. `streamctl.lifecycle` runs the same sequence over this graph
on each of them.

The model is the bottom layer (it imports only errors): config.py takes the keys of ports.*,
external.urls.* and docker.images.* from it, and topology.py applies the settings to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from streamctl.errors import ConfigError, StreamctlError

SERVICE = "service"  # a long-running process or container
TASK = "task"  # a provisioning step that runs once per `up` (idempotent)

# The runtimes, named once (`runtime:` and --runtime take one of these or auto; runtimes/select.py builds each).
CLUSTER_RUNTIMES = ("local", "docker")  # where streamctl runs the clusters itself
CLIENT_RUNTIMES = ("external",)  # where the clusters are someone else's, named by external.*
RUNTIMES = CLUSTER_RUNTIMES + CLIENT_RUNTIMES
RUNTIME_HELP = ("local, docker, external (clusters named by external.*) or auto (docker when an"
                " engine answers, else local).")


@dataclass(frozen=True)
class PortSpec:
    """A port the service binds on this machine: the setting ports.<setting>, `default` unless the
    settings say otherwise (config.Ports holds one setting per PortSpec of the stack)."""

    setting: str  # the name in settings.ports: the port on this machine
    default: int  # its default number
    in_network: int = 0  # the port inside the containers' network; 0: containers do not publish it
    peers: int = 0  # the port other containers reach it on, when not in_network (Kafka's INTERNAL listener)


# How a service says it is ready (Readiness.kind)
HTTP = "http"  # `path` on the service's port `port` answers 200 (a runtime may judge the answer further)
TCP = "tcp"  # the port `port` accepts connections
COMMAND = "command"  # `command`, run beside the service, exits 0
CUSTOM = "custom"  # a check of the service's own (a runtime's class for it implements it)


@dataclass(frozen=True)
class Readiness:
    """What "ready" means for a service, declared once for every runtime: the local runtime polls it
    from this machine (runtimes/local/base.py) and the compose file's healthcheck tests the same
    inside the containers' network (tests/unit/test_readiness.py holds stack/compose.yaml to it)."""

    means: str = ""  # in words
    kind: str = CUSTOM
    port: str = ""  # HTTP, TCP: the name in settings.ports (and in the service's PortSpecs)
    path: str = ""  # HTTP: the path and query asked
    timeout_s: float = 2.0  # HTTP: one attempt from this machine
    command: tuple[str, ...] = ()  # COMMAND: the argv


def http(port: str, path: str, means: str, timeout_s: float = 2.0) -> Readiness:
    return Readiness(means, HTTP, port, path, timeout_s)


@dataclass(frozen=True)
class Access:
    """How this machine's clients reach a service, and its line in what `up` prints (Endpoints derives
    both). A service with `port` is reached by a URL: http://<the stack's host>:<ports.port> on a
    runtime that runs it, else the `external.<external>` setting (someone else's, on a client
    runtime). Kafka, PostgreSQL and Elasticsearch have access objects of their own (kafka_access.py,
    access.py)."""

    label: str  # its line's name in up's addresses
    rank: int  # where that line stands
    port: str = ""  # the name in settings.ports of the port its URL is on
    # "section.key" under the external.* settings: its URL on a client runtime. A typed section's key
    # (flink.rest_url), or "urls.<key>": the setting external.urls.<key>, which the model's naming it creates.
    external: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    description: str
    depends_on: tuple[str, ...] = ()  # a service: until it is ready; a task: until it has run
    ports: tuple[PortSpec, ...] = ()
    kind: str = SERVICE
    role: str = ""  # what runs it (the runtime's class for it); empty: the name
    instance: int = 0  # 1..N when the settings ask for several of this role, else 0
    ready: Readiness = Readiness()  # what "ready" means, the same on every runtime
    access: Access | None = None  # None: no client of this machine reaches it
    # docker: the docker.images.<image> setting that overrides its image (or the base image its
    # Dockerfile builds FROM), the compose file's ${<IMAGE>_IMAGE}; empty: none
    image: str = ""
    runtimes: tuple[str, ...] = CLUSTER_RUNTIMES

    @property
    def runs_as(self) -> str:
        return self.role or self.name


EVERYWHERE = RUNTIMES
DOCKER_ONLY = ("docker",)  # only as container images, which streamctl cannot run as local processes

STACK: tuple[ServiceSpec, ...] = (
    ServiceSpec("postgres", "PostgreSQL (sales_summary)", (), (PortSpec("postgres", 5432, 5432),),
                ready=Readiness("accepts connections"), access=Access("PostgreSQL", 4), image="postgres"),
    ServiceSpec("kafka", "Kafka broker, KRaft", (),
                (PortSpec("kafka", 9092, 9092, peers=19092), PortSpec("kafka_controller", 9093)),
                ready=Readiness("answers API-versions requests"), access=Access("Kafka", 5), image="kafka"),
    ServiceSpec("elasticsearch", "Elasticsearch (transactions-aggregated)", (),
                (PortSpec("elasticsearch", 9200, 9200), PortSpec("elasticsearch_transport", 9300)),
                ready=http("elasticsearch", "/_cluster/health?wait_for_status=yellow&timeout=1s", "cluster health yellow",
                           timeout_s=3), access=Access("Elasticsearch", 3), image="elasticsearch"),
    ServiceSpec("flink-jobmanager", "Flink JobManager (REST/UI)", (),
                (PortSpec("flink_rest", 8081, 8081), PortSpec("flink_rpc", 6123)),
                ready=http("flink_rest", "/overview", "REST /overview answers"),
                access=Access("Flink UI", 1, "flink_rest", external="flink.rest_url"), image="flink_base"),
    # Started beside the JobManager, not after it: it keeps retrying until it registers.
    ServiceSpec("flink-taskmanager", "Flink TaskManager", (),
                ready=Readiness("every TaskManager registered, slots >= flink.parallelism"), image="flink_base"),
    ServiceSpec("topics", "Kafka topics", ("kafka",), kind=TASK, runtimes=EVERYWHERE),
    ServiceSpec("schema", "database and sales_summary table", ("postgres",), kind=TASK, runtimes=EVERYWHERE),
    ServiceSpec("index-template", "Elasticsearch index template", ("elasticsearch",), kind=TASK, runtimes=EVERYWHERE),
    ServiceSpec("producer", "producer REST API", ("topics",), (PortSpec("producer", 5000, 5000),),
                ready=http("producer", "/health", "GET /health answers 200"), access=Access("producer API", 2, "producer"),
                runtimes=EVERYWHERE, image="python_base"),
    ServiceSpec("indexer", "Elasticsearch indexer", ("topics", "index-template"),
                ready=Readiness("consuming, its status file fresh", COMMAND,
                                command=("python", "-m", "streamctl.pipeline.indexer_status")), runtimes=EVERYWHERE,
                image="python_base"),
    # Submitted once the JobManager answers; it then waits for the TaskManager's slots to run.
    ServiceSpec("flink-job", "aggregation job RUNNING", ("topics", "schema", "flink-jobmanager"), kind=TASK,
                runtimes=EVERYWHERE),
    ServiceSpec("kibana", "Kibana (dashboards)", ("elasticsearch",), (PortSpec("kibana", 5601, 5601),),
                ready=http("kibana", "/api/status", "/api/status level available"), access=Access("Kibana", 6, "kibana"),
                runtimes=DOCKER_ONLY, image="kibana"),
    ServiceSpec("kibana-objects", "Kibana data view and dashboard", ("kibana", "index-template"), kind=TASK,
                runtimes=DOCKER_ONLY),
    ServiceSpec("kafka-ui", "Kafka UI", ("kafka",), (PortSpec("kafka_ui", 8080, 8080),),
                ready=http("kafka_ui", "/actuator/health", "/actuator/health UP"), access=Access("Kafka UI", 7, "kafka_ui"),
                runtimes=DOCKER_ONLY, image="kafka_ui"),
)


EXTERNAL_URLS = "urls"  # the external.* section of the URLs the model names, with no typed section of their own


def external_urls(specs: tuple[ServiceSpec, ...] = STACK) -> list[str]:
    """The keys of external.urls: each service's Access(external="urls.<key>"), in declared order."""
    return [s.access.external.partition(".")[2] for s in specs
            if s.access and s.access.external.partition(".")[0] == EXTERNAL_URLS]


def image_keys(specs: tuple[ServiceSpec, ...] = STACK) -> list[str]:
    """The keys of docker.images: each service's `image`, once, in declared order."""
    return list(dict.fromkeys(s.image for s in specs if s.image))


def port_defaults(specs: tuple[ServiceSpec, ...] = STACK) -> dict[str, int]:
    """ports.<name> -> its default number, for every port the stack binds, in declared order."""
    return {port.setting: port.default for spec in specs for port in spec.ports}


def printed(names: set[str], specs: tuple[ServiceSpec, ...] = STACK) -> list[ServiceSpec]:
    """The services whose address `up` prints on a runtime that runs `names`, in the order printed:
    what it runs, and every cluster (what each cluster runtime runs), run here or reached elsewhere."""
    return sorted((s for s in specs if s.access is not None
                   and (s.name in names or set(CLUSTER_RUNTIMES) <= set(s.runtimes))),
                  key=lambda s: s.access.rank if s.access else 0)


def for_runtime(runtime: str, disabled: tuple[str, ...] = (), specs: tuple[ServiceSpec, ...] = STACK
                ) -> tuple[ServiceSpec, ...]:
    """What this runtime runs, less the services the settings leave out (docker.disabled_services).
    A dependency on something the runtime does not run is dropped (on the external runtime the
    clusters are someone else's and simply there); a provisioning step for a left-out service goes
    with it; a service that needs one that was left out is an error."""
    unknown = [name for name in disabled if name not in {s.name for s in specs}]
    if unknown:
        raise ConfigError(f"docker.disabled_services: the stack has no service {', '.join(unknown)}",
                          hint=f"services: {', '.join(s.name for s in specs if s.kind == SERVICE)}")
    here = [s for s in specs if runtime in s.runtimes]
    gone = {name: name for name in disabled}  # what is left out -> the service whose leaving took it along
    for spec in here:  # declared order: a step comes after what it depends on
        roots = [gone[d] for d in spec.depends_on if d in gone]
        if spec.kind == TASK and roots:
            gone[spec.name] = roots[0]
    kept = [s for s in here if s.name not in gone]
    for spec in kept:
        needed = sorted({gone[d] for d in spec.depends_on if d in gone})
        if needed:
            raise ConfigError(f"{spec.name} depends on {', '.join(needed)}, which docker.disabled_services leaves out",
                              hint=f"leave out {spec.name} too, or keep {', '.join(needed)}")
    names = {s.name for s in kept}
    return tuple(replace(s, depends_on=tuple(d for d in s.depends_on if d in names)) for s in kept)


def in_network(name: str) -> tuple[str, int]:
    """(host, port) on which the other containers reach a service: its name, its first port."""
    port = by_name()[name].ports[0]
    return name, port.peers or port.in_network


def services_within(specs: tuple[ServiceSpec, ...], names: set[str]) -> dict[str, tuple[str, ...]]:
    """For each service: the services it waits for, looking through provisioning steps (producer
    waits for topics, which waits for kafka: producer waits for kafka)."""
    index = by_name(specs)

    def services_under(name: str) -> tuple[str, ...]:
        found: list[str] = []
        for dep in index[name].depends_on:
            for service in ((dep,) if index[dep].kind == SERVICE else services_under(dep)):
                if service not in found:
                    found.append(service)
        return tuple(found)

    return {name: services_under(name) for name in names}


def services_only(specs: tuple[ServiceSpec, ...] | None = None) -> list[ServiceSpec]:
    """The services (not the provisioning steps); by default the local runtime's, as declared."""
    if specs is None:
        specs = for_runtime("local")
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
