"""Where the running stack answers, as seen from this machine (the same for every runtime: the
Docker runtime publishes its ports on the same addresses)."""

from __future__ import annotations

from dataclasses import dataclass

from streamctl.access import ElasticsearchAccess, PostgresAccess
from streamctl.config import CLIENT_RUNTIMES, Settings, broker_ports
from streamctl.external_access import external_elasticsearch, external_kafka, external_postgres, flink_rest_url
from streamctl.kafka_access import PLAINTEXT, SASL_SSL, KafkaAccess
from streamctl.net import host_port, http_url
from streamctl.recorded import recorded_runtime
from streamctl.secrets import KAFKA_USER, Secrets

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


@dataclass(frozen=True)
class Endpoints:
    """Where the stack answers, as seen from this machine: one object every consumer receives."""

    kafka: KafkaAccess
    producer_url: str
    flink_url: str
    elasticsearch: ElasticsearchAccess
    postgres: PostgresAccess
    kibana_url: str = ""  # where the runtime runs Kibana (docker)

    @classmethod
    def of(cls, settings: Settings, secrets: Secrets | None = None) -> "Endpoints":
        if runtime_of(settings) in CLIENT_RUNTIMES:
            return external_endpoints(settings)
        host = host_of(settings)
        secrets = secrets or Secrets.load(settings.stack_dir)
        return cls(
            kafka=stack_kafka_access(settings, secrets, host),
            producer_url=http_url(host, settings.ports.producer),
            flink_url=http_url(host, settings.ports.flink_rest),
            elasticsearch=ElasticsearchAccess(http_url(host, settings.ports.elasticsearch)),
            postgres=PostgresAccess(host, settings.ports.postgres, settings.postgres.user,
                                    secrets.postgres_password if secrets else "", settings.postgres.database),
            kibana_url=http_url(host, settings.ports.kibana),
        )

    def addresses(self, postgres: str | None = None, kafka: str | None = None) -> dict[str, str]:
        """What `up` prints, a name and an address per thing a user opens: the same on every runtime,
        except how a runtime shows PostgreSQL (default host:port) and Kafka (default the bootstrap
        servers and protocol)."""
        return {"Flink UI": self.flink_url, "producer API": self.producer_url, "Elasticsearch": self.elasticsearch.url,
                "PostgreSQL": postgres if postgres is not None else host_port(self.postgres.host, self.postgres.port),
                "Kafka": kafka if kafka is not None else self.kafka.describe()}

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
    """Everything streamctl reaches in the external clusters, plus its own producer API."""
    return Endpoints(
        kafka=external_kafka(settings),
        producer_url=http_url(host_of(settings), settings.ports.producer),
        flink_url=flink_rest_url(settings),
        elasticsearch=external_elasticsearch(settings),
        postgres=external_postgres(settings),
    )


__all__ = ["TLS_DIR", "ElasticsearchAccess", "Endpoints", "PostgresAccess", "external_endpoints", "host_of",
           "runtime_of", "stack_kafka_access"]
