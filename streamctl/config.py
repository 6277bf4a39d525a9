"""The one settings model: defaults < streamctl.yaml < STREAMCTL_* environment < flags.

Every value has a name `section.key` (or `key` at the top level). The same name, upper-cased with
dots turned into underscores, is its environment variable: `ports.kafka` -> STREAMCTL_PORTS_KAFKA.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Iterator, Mapping, TypeVar

import yaml

from streamctl.errors import ConfigError
from streamctl.services import CLIENT_RUNTIMES, CLUSTER_RUNTIMES, external_urls, image_keys, port_defaults

ENV_PREFIX = "STREAMCTL_"
CONFIG_FILE_NAME = "streamctl.yaml"
# Environment variables that are not settings but are read by the CLI itself.
RESERVED_ENV = {"STREAMCTL_CONFIG", "STREAMCTL_DEBUG"}
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _default_state_home() -> Path:
    # As root, PostgreSQL and Elasticsearch run as an unprivileged user, which cannot enter /root.
    if _is_root():
        return Path("/var/lib/streamctl")
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "streamctl"


def _default_cache_home() -> Path:
    if _is_root():
        return Path("/var/cache/streamctl")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "streamctl"


V = TypeVar("V")


class Table(Generic[V]):
    """A section whose keys another module declares (ports.*: the stack model's ports): one value of
    one type per key, read and set as attributes like a dataclass section's (settings.ports.kafka),
    loaded, listed and printed like one (unknown keys are errors)."""

    value_type: type[V]
    _values: dict[str, V]

    def __init__(self, value_type: type[V], defaults: Mapping[str, V], **values: V) -> None:
        clashes = [key for key in defaults if hasattr(type(self), key)]
        if clashes:
            raise TypeError(f"{type(self).__name__} keys {clashes} would hide its own attributes")
        object.__setattr__(self, "value_type", value_type)
        object.__setattr__(self, "_values", dict(defaults))
        for key, value in values.items():
            setattr(self, key, value)

    def keys(self) -> list[str]:
        return list(self._values)

    def items(self) -> Iterator[tuple[str, V]]:
        return iter(list(self._values.items()))

    def __getattr__(self, name: str) -> V:
        values = self.__dict__.get("_values", {})  # absent while copy or pickle rebuilds one
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._values:
            raise AttributeError(f"{type(self).__name__} has no {name!r}")
        self._values[name] = value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values == other._values  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


OWN_PORTS = {"ui": 8090}  # streamctl's live view (`streamctl ui`), a process of this machine on every runtime


class Ports(Table[int]):
    """ports.<name>: one for each port the stack model declares (services.PortSpec, with its
    default), plus streamctl's own (OWN_PORTS)."""

    def __init__(self, **ports: int) -> None:
        super().__init__(int, {**port_defaults(), **OWN_PORTS}, **ports)


@dataclass
class KafkaSettings:
    topic: str = "transactions"
    aggregates_topic: str = "sales-aggregated"
    partitions: int = 4
    heap_mb: int = 384
    brokers: int = 1  # local runtime: KRaft nodes (broker and controller each); broker N listens on port + 10*(N-1)
    replication_factor: int = 0  # 0: min(3, brokers)
    min_insync_replicas: int = 0  # 0: replication_factor - 1 (at least 1)
    security: str = "plaintext"  # local runtime: plaintext | sasl_ssl (a generated CA, SCRAM-SHA-512)

    def replication(self) -> int:
        return self.replication_factor or min(3, self.brokers)

    def min_isr(self) -> int:
        return self.min_insync_replicas or max(1, self.replication() - 1)


@dataclass
class FlinkSettings:
    window_seconds: int = 60
    watermark_delay_seconds: int = 1
    parallelism: int = 2
    checkpoint_interval_seconds: int = 10
    dedup_minutes: int = 10  # a retry of a transaction id within this many minutes is counted once
    jobmanager_memory_mb: int = 768
    taskmanager_memory_mb: int = 1152
    taskmanagers: int = 1  # local runtime: TaskManager processes
    slots_per_taskmanager: int = 0  # 0: enough for the parallelism, spread over the TaskManagers
    savepoints_kept: int = 5  # `job savepoint`, `job stop` and `down` keep this many; older ones are disposed of

    def slots(self) -> int:
        return self.slots_per_taskmanager or -(-self.parallelism // self.taskmanagers)


@dataclass
class PostgresSettings:
    database: str = "ecommerce"
    user: str = "streamctl"
    bin_dir: str = ""  # empty: search PATH, pg_config and /usr/lib/postgresql/*/bin


@dataclass
class ElasticsearchSettings:
    index: str = "transactions-aggregated"
    heap_mb: int = 0  # 0: 256 MiB, or 512 MiB where Kibana's indices and queries share it (docker runtime)

    def heap(self, with_kibana: bool) -> int:
        # 256 MiB holds the aggregates index (measured: 542 MiB resident in all, against 840 with 512);
        # Kibana was never measured here on less than 512.
        return self.heap_mb or (512 if with_kibana else 256)


@dataclass
class ProducerSettings:
    workers: int = 2
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_records: int = 5000
    heartbeat_interval_ms: int = 1000
    linger_ms: int = 5  # how long the Kafka client gathers concurrent requests into one batch
    # Admission control: answer 429 with Retry-After while the job is more than this many seconds of
    # ingest behind (0: off). Keeps freshness under a load the job cannot follow; nothing 2xx is lost.
    max_lag_seconds: float = 0.0


@dataclass
class LoadSettings:
    users: int = 200
    spawn_rate: int = 50
    duration: str = "2m"
    max_failure_ratio: float = 0.01


class DockerImages(Table[str]):
    """docker.images.<key>: image overrides for the docker runtime, one per image the stack model
    names (ServiceSpec.image: kafka, postgres, ..., flink_base and python_base being what
    stack/flink/Dockerfile and stack/apps/Dockerfile build FROM); empty keeps the version pinned in
    stack/compose.yaml."""

    def __init__(self, **images: str) -> None:
        super().__init__(str, dict.fromkeys(image_keys(), ""), **images)


@dataclass
class DockerSettings:
    compose_file: str = ""  # empty: stack/compose.yaml
    project: str = ""  # empty: streamctl-<stack_name>
    disabled_services: str = ""  # comma-separated compose services to leave out, e.g. "kibana,kafka-ui"
    wait_s: int = 300  # the longest any one service may take to become ready
    images: DockerImages = field(default_factory=DockerImages)

    def disabled(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.disabled_services.split(",") if name.strip())


@dataclass
class ExternalKafka:
    bootstrap_servers: str = ""  # host:port,host:port
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str = ""  # SCRAM-SHA-512 | SCRAM-SHA-256 | PLAIN
    username: str = ""
    password_env: str = ""  # the name of an environment variable holding the password
    password_file: str = ""  # or a file holding it (never the password itself in this file)
    ca_file: str = ""  # PEM; empty: the system's trust store
    min_replication: int = 3  # topics replicated fewer times are refused ...
    allow_low_replication: bool = False  # ... unless this says so


@dataclass
class ExternalFlink:
    rest_url: str = ""  # a Flink 1.20 session cluster's REST address
    savepoint_dir: str = ""  # as the cluster sees it; empty: the cluster's state.savepoints.dir
    ship_connectors: bool = True  # send the locked connector jars with the job (the cluster's lib/ lacks them)


@dataclass
class ExternalPostgres:
    dsn: str = ""  # postgresql://user@host:5432/database?sslmode=verify-full&sslrootcert=/ca.pem, no password
    password_env: str = ""
    password_file: str = ""


@dataclass
class ExternalElasticsearch:
    url: str = ""
    username: str = ""
    password_env: str = ""
    password_file: str = ""
    ca_file: str = ""


class ExternalUrls(Table[str]):
    """external.urls.<key>: the http://host:port of a service someone else runs, for each the stack
    model reaches by URL and names so (Access(external="urls.<key>")); the typed sections above hold
    the others."""

    def __init__(self, **urls: str) -> None:
        super().__init__(str, dict.fromkeys(external_urls(), ""), **urls)


@dataclass
class ExternalSettings:
    """`runtime: external`: clusters streamctl did not create; it runs only the producer and the indexer."""

    kafka: ExternalKafka = field(default_factory=ExternalKafka)
    flink: ExternalFlink = field(default_factory=ExternalFlink)
    postgres: ExternalPostgres = field(default_factory=ExternalPostgres)
    elasticsearch: ExternalElasticsearch = field(default_factory=ExternalElasticsearch)
    urls: ExternalUrls = field(default_factory=ExternalUrls)


@dataclass
class Settings:
    stack_name: str = "default"
    runtime: str = "auto"  # auto | local | docker | external
    bind_address: str = "127.0.0.1"
    expose: bool = False  # binding beyond loopback must be asked for: Kafka, Flink and Elasticsearch have no auth
    state_dir: Path = field(default_factory=_default_state_home)
    cache_dir: Path = field(default_factory=_default_cache_home)
    maven_repository: str = MAVEN_CENTRAL
    java_home: str = ""  # empty: JAVA_HOME, then `java` on PATH
    service_user: str = "streamctl"  # who runs PostgreSQL and Elasticsearch when streamctl runs as root
    ports: Ports = field(default_factory=Ports)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    flink: FlinkSettings = field(default_factory=FlinkSettings)
    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    elasticsearch: ElasticsearchSettings = field(default_factory=ElasticsearchSettings)
    producer: ProducerSettings = field(default_factory=ProducerSettings)
    load: LoadSettings = field(default_factory=LoadSettings)
    docker: DockerSettings = field(default_factory=DockerSettings)
    external: ExternalSettings = field(default_factory=ExternalSettings)
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False, metadata={"internal": True})

    @property
    def stack_dir(self) -> Path:
        """This stack's own state: data, logs, pids, generated configs, secrets."""
        return self.state_dir / self.stack_name

    def flat(self) -> dict[str, Any]:
        return dict(_flatten(self))


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(value: Any) -> bool:
    return dataclasses.is_dataclass(value) or isinstance(value, Table)


def _flatten(obj: Any, prefix: str = "") -> typing.Iterator[tuple[str, Any]]:
    if isinstance(obj, Table):
        for key, item in obj.items():
            yield prefix + key, item
        return
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        value = getattr(obj, f.name)
        name = prefix + f.name
        if _is_section(value):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def settings_yaml(settings: Settings) -> str:
    """Every setting as a streamctl.yaml that load_settings reads back to the same values."""
    nested: dict[str, Any] = {}
    for name, value in settings.flat().items():
        *sections, key = name.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = str(value) if isinstance(value, Path) else value
    return yaml.safe_dump(nested, sort_keys=False)


def setting_names() -> list[str]:
    return [name for name, _ in _flatten(Settings())]


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.replace(".", "_").upper()


def _coerce(value: Any, typ: Any, name: str, source: str, from_text: bool) -> Any:
    """Check (file values) or parse (env/flag text) one value against its declared type."""
    kind = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string", "Path": "a path"}
    if from_text and isinstance(value, str):
        try:
            if typ is bool:
                lowered = value.strip().lower()
                if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError
                return lowered in {"1", "true", "yes", "on"}
            if typ in (int, float):
                return typ(value)
        except ValueError:
            raise ConfigError(
                f"{name} in {source} must be {kind[typ.__name__]}, got {value!r}",
                hint=f"fix {name} in {source}",
            ) from None
    if typ is Path:
        if isinstance(value, (str, Path)) and str(value):
            return Path(value).expanduser()
    elif typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif isinstance(value, typ) and not (typ is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"{name} in {source} must be {kind[typ.__name__]}, got {type(value).__name__} {value!r}",
        hint=f"fix {name} in {source}",
    )


def _apply(
    target: Any,
    values: Mapping[str, Any],
    source: str,
    prefix: str = "",
    from_text: bool = False,
    sources: dict[str, str] | None = None,
) -> None:
    if isinstance(target, Table):
        hints: dict[str, Any] = dict.fromkeys(target.keys(), target.value_type)
    else:
        hints = _type_hints(type(target))
    known = set(hints) if isinstance(target, Table) else \
        {f.name for f in dataclasses.fields(target) if not f.metadata.get("internal")}
    for key, value in values.items():
        name = prefix + str(key)
        if key not in known:
            raise ConfigError(
                f"unknown setting {name!r} in {source}",
                hint="`streamctl config` lists every setting with its value",
            )
        current = getattr(target, key)
        if _is_section(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name} in {source} must be a mapping of settings", hint=f"fix {name} in {source}")
            _apply(current, value, source, name + ".", from_text, sources)
        else:
            setattr(target, key, _coerce(value, hints[key], name, source, from_text))
            if sources is not None:
                sources[name] = source


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        node = nested
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def find_config_file(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist", hint="check the --config path")
        return explicit
    candidate = (cwd or Path.cwd()) / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build the effective settings. `overrides` are flag values by setting name (None = not given)."""
    settings = Settings()
    sources: dict[str, str] = {}
    path = find_config_file(config_file, cwd)
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where} is not valid YAML", hint="fix the YAML syntax") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path} must hold a mapping of settings", hint="see `streamctl config`")
        _apply(settings, data, str(path), sources=sources)

    env = os.environ if env is None else env
    by_env = {env_name(n): n for n in setting_names()}
    from_env: dict[str, Any] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var in RESERVED_ENV:
            continue
        if var not in by_env:
            raise ConfigError(
                f"unknown setting in environment variable {var}",
                hint="`streamctl config` lists every setting; its variable is STREAMCTL_ + the name in upper case",
            )
        from_env[by_env[var]] = value
    for name, value in from_env.items():
        _apply(settings, _nest({name: value}), f"environment variable {env_name(name)}", from_text=True, sources=sources)

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    for name, value in given.items():
        _apply(settings, _nest({name: value}), f"flag for {name}", from_text=True, sources=sources)
    _validate(settings)
    settings.sources = sources  # where each non-default value came from, for `streamctl config`
    return settings


KAFKA_SECURITY = ("plaintext", "sasl_ssl")
# `runtime:` and --runtime take one of the runtimes the stack model names (services.py) or auto.
RUNTIMES = ("auto", *CLUSTER_RUNTIMES, *CLIENT_RUNTIMES)


def broker_ports(settings: Settings, n: int) -> tuple[int, int]:
    """(client port, controller port) of local broker n (1-based): the first's plus 10 per broker."""
    return settings.ports.kafka + 10 * (n - 1), settings.ports.kafka_controller + 10 * (n - 1)


UNAUTHENTICATED = ("kafka", "flink_rest", "elasticsearch", "producer")
KAFKA_TOPIC_RE = re.compile(r"[a-zA-Z0-9._-]{1,249}")  # what the broker accepts
INDEX_RE = re.compile(r"[a-z0-9.][a-z0-9._+-]{0,254}")  # what Elasticsearch accepts, ASCII only


def _validate_bind_address(settings: Settings) -> None:
    try:
        address = ipaddress.ip_address(settings.bind_address.strip())
    except ValueError:
        raise ConfigError(f"bind_address must be an IP address, got {settings.bind_address!r}",
                          hint="use 127.0.0.1 (the default); an empty value would mean every interface") from None
    if not address.is_loopback and not settings.expose:
        raise ConfigError(
            f"bind_address {settings.bind_address} listens beyond this machine, and Kafka, Flink's REST API and"
            " Elasticsearch have no authentication",
            hint="keep 127.0.0.1, or set expose: true (STREAMCTL_EXPOSE=true) to allow it knowingly")


def exposure_warning(settings: Settings) -> str | None:
    """What `up` says when the stack listens beyond loopback (allowed by `expose: true`)."""
    if ipaddress.ip_address(settings.bind_address).is_loopback:
        return None
    ports = ", ".join(f"{name} {getattr(settings.ports, name)}" for name in UNAUTHENTICATED)
    return (f"bind_address {settings.bind_address}: anyone who reaches this machine can use these services,"
            f" which have no authentication: {ports}")


def _validate(settings: Settings) -> None:
    _validate_bind_address(settings)
    if settings.runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be {', '.join(RUNTIMES)}, got {settings.runtime!r}", hint="fix runtime")
    ports = dict(settings.ports.items())
    for name, port in ports.items():
        if not 1 <= port <= 65535:
            raise ConfigError(f"ports.{name} must be between 1 and 65535, got {port}", hint=f"fix ports.{name}")
    kafka = settings.kafka
    for n in range(2, kafka.brokers + 1):  # the further brokers' ports, derived from the first's
        ports[f"kafka (broker {n})"] = broker_ports(settings, n)[0]
        ports[f"kafka_controller (broker {n})"] = broker_ports(settings, n)[1]
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise ConfigError(
                f"ports.{name} and ports.{seen[port]} are both {port}", hint="give each service its own port"
            )
        seen[port] = name
    if settings.flink.window_seconds < 1 or settings.kafka.partitions < 1:
        raise ConfigError("flink.window_seconds and kafka.partitions must be at least 1", hint="fix them")
    for key, value, low, high in (
        # >= 1 s: with no delay, a record stamped in a window's last millisecond could arrive late
        ("flink.watermark_delay_seconds", settings.flink.watermark_delay_seconds, 1, 3600),
        ("flink.dedup_minutes", settings.flink.dedup_minutes, 1, 1440),
        ("flink.checkpoint_interval_seconds", settings.flink.checkpoint_interval_seconds, 1, 3600),
        ("producer.workers", settings.producer.workers, 1, 64),
        # validate takes 10 s without a heartbeat for a stopped producer
        ("producer.heartbeat_interval_ms", settings.producer.heartbeat_interval_ms, 10, 5000),
        ("kafka.brokers", kafka.brokers, 1, 9),
        ("kafka.replication_factor", kafka.replication_factor, 0, 32767),
        ("kafka.min_insync_replicas", kafka.min_insync_replicas, 0, 32767),
        ("flink.taskmanagers", settings.flink.taskmanagers, 1, 16),
        ("flink.slots_per_taskmanager", settings.flink.slots_per_taskmanager, 0, 256),
        ("flink.savepoints_kept", settings.flink.savepoints_kept, 1, 1000),
        ("load.max_failure_ratio", settings.load.max_failure_ratio, 0, 1),
        ("producer.max_lag_seconds", settings.producer.max_lag_seconds, 0, 86400),
    ):
        if not low <= value <= high:
            raise ConfigError(f"{key} must be between {low} and {high}, got {value}", hint=f"fix {key}")
    if kafka.security not in KAFKA_SECURITY:
        raise ConfigError(f"kafka.security must be {' or '.join(KAFKA_SECURITY)}, got {kafka.security!r}",
                          hint="fix kafka.security")
    flink = settings.flink
    if flink.slots() * flink.taskmanagers < flink.parallelism:
        raise ConfigError(f"{flink.taskmanagers} TaskManager(s) x {flink.slots()} slots cannot run parallelism"
                          f" {flink.parallelism}", hint="raise flink.slots_per_taskmanager or flink.taskmanagers")
    if kafka.min_isr() > kafka.replication() and settings.runtime not in CLIENT_RUNTIMES:
        raise ConfigError(f"kafka.min_insync_replicas {kafka.min_isr()} is above the replication factor"
                          f" {kafka.replication()}: no write could be acknowledged", hint="lower kafka.min_insync_replicas")
    for setting, name, rule, allowed in (
        ("kafka.topic", settings.kafka.topic, KAFKA_TOPIC_RE, "letters, digits, '.', '_' and '-', at most 249"),
        ("kafka.aggregates_topic", settings.kafka.aggregates_topic, KAFKA_TOPIC_RE,
         "letters, digits, '.', '_' and '-', at most 249"),
        ("elasticsearch.index", settings.elasticsearch.index, INDEX_RE,
         "lower-case letters, digits, '.', '_', '-' and '+', not starting with '-', '_' or '+', at most 255"),
    ):
        if not rule.fullmatch(name) or name in (".", ".."):
            raise ConfigError(f"{setting} {name!r} is not a valid name: {allowed}", hint=f"fix {setting}")
    if not settings.stack_name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(
            f"stack_name {settings.stack_name!r} may hold only letters, digits, - and _", hint="fix stack_name"
        )
