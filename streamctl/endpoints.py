"""Where the running stack answers, as seen from this machine (the same for every runtime: the
Docker runtime publishes its ports on the same addresses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from streamctl.access import ElasticsearchAccess, PostgresAccess
from streamctl.config import Settings, broker_ports
from streamctl.external_access import external_elasticsearch, external_kafka, external_postgres, external_url
from streamctl.kafka_access import PLAINTEXT, SASL_SSL, KafkaAccess
from streamctl.net import host_port, http_url
from streamctl.recorded import recorded_runtime
from streamctl.secrets import KAFKA_USER, Secrets
from streamctl.services import CLIENT_RUNTIMES, STACK, printed

TLS_DIR = "tls"  # under the stack directory: the CA clients trust (runtimes/local/tls.py makes it)


def host_of(settings: Settings) -> str:
    """The address this machine reaches the stack's published ports on."""
    return settings.bind_address if settings.bind_address not in ("0.0.0.0", "::") else "127.0.0.1"


def stack_kafka_access(settings: Settings, secrets: Secrets | None, host: str = "") -> KafkaAccess:
    """The Kafka cluster streamctl runs itself: every broker's client port, and SCRAM over TLS with
    the stack's own CA when kafka.security is sasl_ssl."""
    host = host or host_of(settings)
    bootstrap = ",".join(host_port(host, broker_ports(settings, n)[0]) for n in range(1, settings.kafka.brokers + 1))
    if settings.kafka.security != "sasl_ssl":
        return KafkaAccess(bootstrap, PLAINTEXT)
    return KafkaAccess(bootstrap, SASL_SSL, "SCRAM-SHA-512", KAFKA_USER, secrets.kafka_password if secrets else "",
                       str(settings.stack_dir / TLS_DIR / "ca.pem"))


def stack_urls(settings: Settings, host: str) -> dict[str, str]:
    """The URL of every service the model reaches by one (services.Access.port), as the stack runs it."""
    return {s.name: http_url(host, getattr(settings.ports, s.access.port)) for s in STACK if s.access and s.access.port}


@dataclass(frozen=True)
class Endpoints:
    """Where the stack answers, as seen from this machine: one object every consumer receives."""

    kafka: KafkaAccess
    elasticsearch: ElasticsearchAccess
    postgres: PostgresAccess
    urls: Mapping[str, str] = field(default_factory=dict)  # service -> URL, for each the model reaches by one

    @classmethod
    def of(cls, settings: Settings, secrets: Secrets | None = None) -> "Endpoints":
        if runtime_of(settings) in CLIENT_RUNTIMES:
            return external_endpoints(settings)
        host = host_of(settings)
        secrets = secrets or Secrets.load(settings.stack_dir)
        return cls(
            kafka=stack_kafka_access(settings, secrets, host),
            elasticsearch=ElasticsearchAccess(http_url(host, settings.ports.elasticsearch)),
            postgres=PostgresAccess(host, settings.ports.postgres, settings.postgres.user,
                                    secrets.postgres_password if secrets else "", settings.postgres.database),
            urls=stack_urls(settings, host),
        )

    def address(self, service: str) -> str:
        """What `up` prints for a service: its URL, or what its own access object prints."""
        own: dict[str, KafkaAccess | PostgresAccess | ElasticsearchAccess] = {
            "kafka": self.kafka, "postgres": self.postgres, "elasticsearch": self.elasticsearch}
        return own[service].address() if service in own else self.urls[service]

    def addresses(self, runs: Iterable[str], shown: Mapping[str, str] | None = None) -> dict[str, str]:
        """What `up` prints, a name and an address per thing a user opens, derived from the model
        (services.Access): the same on every runtime, except what a runtime shows its own way
        (`shown`, by service: PostgreSQL's DSN, Kafka's bare bootstrap servers)."""
        shown = shown or {}
        return {s.access.label: shown[s.name] if s.name in shown else self.address(s.name)
                for s in printed(set(runs)) if s.access}

    @property
    def producer_url(self) -> str:
        return self.urls["producer"]

    @property
    def flink_url(self) -> str:
        return self.urls["flink-jobmanager"]

    @property
    def kibana_url(self) -> str:
        return self.urls.get("kibana", "")  # where the runtime runs Kibana (docker)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def elasticsearch_url(self) -> str:
        return self.elasticsearch.url

    @property
    def postgres_host(self) -> str:
        return self.postgres.host

    @property
    def postgres_port(self) -> int:
        return self.postgres.port

    def postgres_dsn(self, with_password: bool = True) -> str:
        return self.postgres.dsn(with_password)

    def postgres_connect(self, timeout_s: int = 5):
        return self.postgres.connect(timeout_s)


def runtime_of(settings: Settings) -> str:
    """The runtime the stack was brought up with (recorded by `up`), else the one asked for."""
    recorded = recorded_runtime(settings.stack_dir)
    return recorded if recorded is not None else settings.runtime


def external_endpoints(settings: Settings) -> Endpoints:
    """Everything streamctl reaches in the external clusters, plus its own processes (the producer API)."""
    kafka = external_kafka(settings)
    here = set(CLIENT_RUNTIMES)
    urls = {s.name: http_url(host_of(settings), getattr(settings.ports, s.access.port)) if here & set(s.runtimes)
            else external_url(settings, s.access.external)
            for s in STACK if s.access and s.access.port and (here & set(s.runtimes) or s.access.external)}
    return Endpoints(kafka=kafka, elasticsearch=external_elasticsearch(settings), postgres=external_postgres(settings),
                     urls=urls)


__all__ = ["TLS_DIR", "ElasticsearchAccess", "Endpoints", "PostgresAccess", "external_endpoints", "host_of",
           "runtime_of", "stack_kafka_access"]
