"""Where the running stack answers, as seen from this machine (the same for every runtime: the
Docker runtime publishes its ports on the same addresses)."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import quote, unquote, urlsplit

from streamctl.config import Settings, broker_ports
from streamctl.errors import ServiceUnavailable
from streamctl.kafka_access import PLAINTEXT, SASL_SSL, KafkaAccess
from streamctl.net import host_port, http_url
from streamctl.secrets import KAFKA_USER, Secrets
from streamctl.waits import http_json

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
class ElasticsearchAccess:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""

    def client(self, request_timeout: int = 30):
        from elasticsearch import Elasticsearch

        options: dict[str, Any] = {"request_timeout": request_timeout}
        if self.username:
            options["basic_auth"] = (self.username, self.password)
        if self.ca_file:
            options["ca_certs"] = self.ca_file
        return Elasticsearch(self.url, **options)

    def _headers(self) -> dict[str, str]:
        if not self.username:
            return {}
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def request(self, path: str, timeout_s: float = 10, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        return http_json(f"{self.url}{path}", timeout_s, method, body, self._headers(), context)

    def to_env(self, prefix: str) -> dict[str, str]:
        return {f"{prefix}_ELASTICSEARCH_URL": self.url, f"{prefix}_ELASTICSEARCH_USERNAME": self.username,
                f"{prefix}_ELASTICSEARCH_PASSWORD": self.password, f"{prefix}_ELASTICSEARCH_CA_FILE": self.ca_file}

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str) -> "ElasticsearchAccess":
        return cls(env[f"{prefix}_ELASTICSEARCH_URL"], env.get(f"{prefix}_ELASTICSEARCH_USERNAME", ""),
                   env.get(f"{prefix}_ELASTICSEARCH_PASSWORD", ""), env.get(f"{prefix}_ELASTICSEARCH_CA_FILE", ""))


@dataclass(frozen=True)
class PostgresAccess:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    options: str = ""  # libpq URI parameters, e.g. sslmode=verify-full&sslrootcert=/ca.pem

    def dsn(self, with_password: bool = True, database: str = "") -> str:
        password = f":{quote(self.password, safe='')}" if with_password and self.password else ""
        query = f"?{self.options}" if self.options else ""
        return (f"postgresql://{quote(self.user, safe='')}{password}@{host_port(self.host, self.port)}/"
                f"{database or self.database}{query}")

    def jdbc_url(self) -> str:
        """The same database for the job's JDBC sink (the PostgreSQL driver reads the same ssl* names)."""
        query = f"?{self.options}" if self.options else ""
        return f"jdbc:postgresql://{host_port(self.host, self.port)}/{self.database}{query}"

    def connect(self, timeout_s: int = 5):
        """A psycopg2 connection to the stack's database; ServiceUnavailable (exit 2) when it is down."""
        import psycopg2

        try:
            return psycopg2.connect(self.dsn(with_password=False), password=self.password, connect_timeout=timeout_s)
        except psycopg2.OperationalError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            raise ServiceUnavailable(f"PostgreSQL is unreachable at {host_port(self.host, self.port)} ({first_line})",
                                     hint="check `streamctl status`") from None

    @classmethod
    def from_dsn(cls, dsn: str, password: str) -> "PostgresAccess":
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
            raise ValueError("not a postgresql://user@host:port/database URI")
        if parts.password or "password=" in parts.query.lower():
            raise ValueError("it holds a password: give it by password_env or password_file instead")
        return cls(parts.hostname, parts.port or 5432, unquote(parts.username or ""), password,
                   parts.path.strip("/"), parts.query)


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
        if runtime_of(settings) == "external":
            from streamctl.runtimes.external.settings import external_endpoints

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
    recorded = settings.stack_dir / "runtime"
    return recorded.read_text().strip() if recorded.is_file() else settings.runtime
