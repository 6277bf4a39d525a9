"""How a client reaches PostgreSQL and Elasticsearch: address, credentials, CA, on every runtime
(KafkaAccess, in kafka_access.py, is Kafka's). Endpoints holds one of each."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import quote, unquote, urlsplit

from streamctl.errors import ServiceUnavailable
from streamctl.net import host_port
from streamctl.waits import http_json


@dataclass(frozen=True)
class ElasticsearchAccess:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""

    def address(self) -> str:
        """What `up` prints for it."""
        return self.url

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

    def address(self) -> str:
        """What `up` prints for it: host:port (the external runtime prints the DSN instead)."""
        return host_port(self.host, self.port)

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
