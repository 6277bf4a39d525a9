"""Apache Kafka 4 in KRaft combined mode (broker and controller in one JVM), from the locked jars."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from streamctl.artifacts.fetch import cached_file
from streamctl.artifacts.lock import Role, read_lock
from streamctl.errors import StartupError
from streamctl.paths import LOCK_FILE
from streamctl.runtimes.local.base import Launch, LocalService
from streamctl.waits import Check, tcp_open

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def random_cluster_id() -> str:
    """A base64 UUID, as KRaft wants; never one starting with '-', which command lines read as a flag
    (1 in 64 random ids did: `kafka-storage: error: argument --cluster-id/-t: expected one argument`)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def broker_classpath(cache_dir: Path) -> str:
    lock = read_lock(LOCK_FILE)
    return ":".join(str(cached_file(cache_dir, a)) for a in lock.by_role(Role.KAFKA_BROKER) if a.extension == "jar")


class Kafka(LocalService):
    name = "kafka"
    start_timeout_s = 90.0

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def bootstrap(self) -> str:
        return f"{self.ctx.host}:{self.ctx.settings.ports.kafka}"

    def server_properties(self) -> str:
        s = self.ctx.settings
        host = self.ctx.host
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{s.ports.kafka_controller}",
            "listeners": f"PLAINTEXT://{host}:{s.ports.kafka},CONTROLLER://{host}:{s.ports.kafka_controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{s.ports.kafka}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.kafka.partitions),
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def java_argv(self, main_class: str, *args: str) -> tuple[str, ...]:
        heap = self.ctx.settings.kafka.heap_mb
        return (
            str(self.ctx.java.binary), f"-Xms{heap}m", f"-Xmx{heap}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp", broker_classpath(self.ctx.settings.cache_dir), main_class, *args,
        )

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "server.properties").write_text(self.server_properties())
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        if (self.data_dir / "meta.properties").is_file():
            return
        cluster_id = random_cluster_id()
        result = subprocess.run(
            self.java_argv("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                           "-c", str(self.dir / "server.properties"), "--ignore-formatted"),
            capture_output=True, text=True, cwd=self.dir,
        )
        if result.returncode != 0:
            raise StartupError("formatting Kafka's storage failed", details=(result.stdout + result.stderr)[-2000:],
                               hint=f"see the message above; data directory {self.data_dir}")

    def launch(self) -> Launch:
        return Launch(self.java_argv("kafka.Kafka", str(self.dir / "server.properties")),
                      self.ctx.base_env, self.dir)

    def ready(self) -> Check:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        # kafka-python blocks for its whole bootstrap timeout (30 s) when nothing listens: ask the port first.
        if not tcp_open(self.ctx.host, self.ctx.settings.ports.kafka):
            return False, f"{self.bootstrap} not listening yet"
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        except (KafkaError, OSError, ValueError) as exc:
            return False, f"{self.bootstrap}: {type(exc).__name__}"
        try:
            admin.list_topics()
            return True, f"broker answers on {self.bootstrap}"
        except (KafkaError, OSError) as exc:
            return False, f"{self.bootstrap}: {type(exc).__name__}"
        finally:
            admin.close()

    def endpoint(self) -> str:
        return self.bootstrap
