"""Where the running stack answers, as seen from this machine (the same for every runtime: the
Docker runtime publishes its ports on the same addresses)."""

from __future__ import annotations

from dataclasses import dataclass

from streamctl.config import Settings
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
