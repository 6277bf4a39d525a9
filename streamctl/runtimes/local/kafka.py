"""Apache Kafka 4 in KRaft combined mode (broker and controller in one JVM), from the locked jars."""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import threading
import uuid
from pathlib import Path

from streamctl.artifacts.fetch import cached_file
from streamctl.artifacts.lock import Role, read_lock
from streamctl.config import broker_ports
from streamctl.endpoints import TLS_DIR
from streamctl.errors import StartupError
from streamctl.net import host_port
from streamctl.paths import LOCK_FILE
from streamctl.runtimes.local.base import JVM_START_TIMEOUT_S, Launch, LocalService
from streamctl.runtimes.local.tls import TlsFiles, ensure_tls
from streamctl.secrets import KAFKA_USER
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
    """One KRaft node (broker and controller in one JVM); `kafka.brokers: N` runs N of them as one
    cluster, node n listening on the first node's ports plus 10*(n-1)."""

    name = "kafka"
    start_timeout_s = JVM_START_TIMEOUT_S  # a node is ready once every node has registered

    @property
    def node_id(self) -> int:
        return self.spec.instance or 1

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def ports(self) -> tuple[int, int]:
        return broker_ports(self.ctx.settings, self.node_id)

    @property
    def bootstrap(self) -> str:
        return host_port(self.ctx.host, self.ports[0])

    @property
    def secure(self) -> bool:
        return self.ctx.settings.kafka.security == "sasl_ssl"

    def server_properties(self) -> str:
        s = self.ctx.settings
        host = self.ctx.host
        client_port, controller_port = self.ports
        brokers = s.kafka.brokers
        internal_rf = str(min(s.kafka.replication(), brokers))
        internal_isr = str(min(s.kafka.min_isr(), brokers))
        # The controller listener has no authentication: it stays on loopback, where every node runs.
        voters = ",".join(f"{n}@127.0.0.1:{broker_ports(s, n)[1]}" for n in range(1, brokers + 1))
        listener = "CLIENT" if self.secure else "PLAINTEXT"
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"{listener}://{host_port(host, client_port)},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"{listener}://{host_port(host, client_port)}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": listener,
            "listener.security.protocol.map": f"{listener}:{'SASL_SSL' if self.secure else 'PLAINTEXT'},"
                                              "CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.kafka.partitions),
            "default.replication.factor": internal_rf,
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": internal_rf,
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": internal_rf,
            "transaction.state.log.min.isr": internal_isr,
            "share.coordinator.state.topic.replication.factor": internal_rf,
            "share.coordinator.state.topic.min.isr": internal_isr,
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        if brokers > 1:
            # A killed node's partitions move to a follower once the controller misses its heartbeats:
            # 3 s instead of 9 s, so the producer's 5 s acknowledgement timeout outlasts the election.
            props.update({"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"})
        if self.secure:
            tls = TlsFiles(self.ctx.stack_dir / TLS_DIR)
            jaas = self.ctx.kafka.java_properties()["sasl.jaas.config"]
            props.update({
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
                "listener.name.client.scram-sha-512.sasl.jaas.config": jaas,
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(tls.broker_keystore),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(tls.ca_cert),
            })
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
        if self.secure:
            ensure_tls(self.ctx.stack_dir / TLS_DIR, self.ctx.host)
        properties = self.dir / "server.properties"
        properties.touch(mode=0o600)
        properties.chmod(0o600)  # it holds the SCRAM password when kafka.security is sasl_ssl
        properties.write_text(self.server_properties())
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        if (self.data_dir / "meta.properties").is_file():
            return
        scram = []
        if self.secure:  # the SCRAM user is written into the cluster's first metadata
            scram = ["--add-scram", f"SCRAM-SHA-512=[name={KAFKA_USER},password={self.ctx.secrets.kafka_password}]"]
        result = subprocess.run(
            self.java_argv("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id(self.ctx.stack_dir)}",
                           "-c", str(properties), "--ignore-formatted", *scram),
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
        if not tcp_open(self.ctx.host, self.ports[0]):
            return False, f"{self.bootstrap} not listening yet"
        # Ask this node alone: the others may not be up yet.
        access = dataclasses.replace(self.ctx.kafka, bootstrap=self.bootstrap)
        try:
            admin = KafkaAdminClient(**access.kafka_python(), request_timeout_ms=3000)
        except (KafkaError, OSError, ValueError) as exc:
            return False, f"{self.bootstrap}: {type(exc).__name__}"
        try:
            brokers = len(admin.describe_cluster().get("brokers", []))
            wanted = self.ctx.settings.kafka.brokers
            if brokers < wanted:
                return False, f"{brokers} of {wanted} brokers registered"
            return True, f"broker answers on {self.bootstrap}" + (f", {brokers} brokers" if wanted > 1 else "")
        except (KafkaError, OSError) as exc:
            return False, f"{self.bootstrap}: {type(exc).__name__}"
        finally:
            admin.close()

    def endpoint(self) -> str:
        return self.bootstrap


def cluster_id(stack_dir: Path) -> str:
    """The KRaft cluster id every node of the stack is formatted with: made once (the brokers prepare
    at once; os.link makes the first one's id everyone's)."""
    path = stack_dir / "kafka-cluster-id"
    if not path.is_file():
        stack_dir.mkdir(parents=True, exist_ok=True)
        scratch = stack_dir / f".kafka-cluster-id.{os.getpid()}.{threading.get_ident()}"
        scratch.write_text(random_cluster_id())
        try:
            os.link(scratch, path)
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return path.read_text().strip()
