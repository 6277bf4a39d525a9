"""Where the running stack answers, as seen from this machine (the same for every runtime: the
Docker runtime publishes its ports on the same addresses)."""

from __future__ import annotations

from dataclasses import dataclass

from streamctl.config import Settings
from streamctl.errors import ServiceUnavailable
from streamctl.secrets import Secrets


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    producer_url: str
    flink_url: str
    elasticsearch_url: str
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_password: str
    postgres_database: str

    @classmethod
    def of(cls, settings: Settings) -> "Endpoints":
        host = settings.bind_address if settings.bind_address not in ("0.0.0.0", "::") else "127.0.0.1"
        secrets = Secrets.load(settings.stack_dir)
        return cls(
            kafka_bootstrap=f"{host}:{settings.ports.kafka}",
            producer_url=f"http://{host}:{settings.ports.producer}",
            flink_url=f"http://{host}:{settings.ports.flink_rest}",
            elasticsearch_url=f"http://{host}:{settings.ports.elasticsearch}",
            postgres_host=host,
            postgres_port=settings.ports.postgres,
            postgres_user=settings.postgres.user,
            postgres_password=secrets.postgres_password if secrets else "",
            postgres_database=settings.postgres.database,
        )

    def postgres_dsn(self, with_password: bool = True) -> str:
        password = f":{self.postgres_password}" if with_password and self.postgres_password else ""
        return (f"postgresql://{self.postgres_user}{password}@{self.postgres_host}:{self.postgres_port}/"
                f"{self.postgres_database}")

    def postgres_connect(self, timeout_s: int = 5):
        """A psycopg2 connection to the stack's database; ServiceUnavailable (exit 2) when it is down."""
        import psycopg2

        try:
            return psycopg2.connect(host=self.postgres_host, port=self.postgres_port, user=self.postgres_user,
                                    password=self.postgres_password, dbname=self.postgres_database,
                                    connect_timeout=timeout_s)
        except psycopg2.OperationalError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            raise ServiceUnavailable(f"PostgreSQL is unreachable at {self.postgres_host}:{self.postgres_port}"
                                     f" ({first_line})", hint="check `streamctl status`") from None
