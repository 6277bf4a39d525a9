"""How every streamctl client reaches Kafka: bootstrap servers and, when the cluster asks for it,
TLS and SASL. One object, rendered for each client library the pipeline uses (librdkafka in the
producer and validate, kafka-python in the admin, indexer and lag report, the Java client inside
the Flink job), so no consumer formats its own connection settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

PLAINTEXT = "PLAINTEXT"
SASL_SSL = "SASL_SSL"
SECURITY_PROTOCOLS = (PLAINTEXT, "SSL", "SASL_PLAINTEXT", SASL_SSL)
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
# kafka-clients in Flink's connector lib is not shaded: the login modules keep their own names.
_JAAS_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                 "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                 "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}


def _jaas_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    security_protocol: str = PLAINTEXT
    sasl_mechanism: str = ""  # set when the protocol is SASL_*
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""  # PEM; empty: the system's trust store

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", SASL_SSL)

    def describe(self) -> str:
        """For messages: never the password."""
        who = f" as {self.username} ({self.sasl_mechanism})" if self.uses_sasl else ""
        return f"{self.bootstrap} over {self.security_protocol}{who}"

    def address(self) -> str:
        """What `up` prints for it."""
        return self.describe()

    def librdkafka(self) -> dict[str, str]:
        """confluent-kafka configuration (producer API, validate)."""
        conf = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol}
        if self.uses_sasl:
            conf.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.username,
                         "sasl.password": self.password})
        if self.uses_tls and self.ca_file:
            conf["ssl.ca.location"] = self.ca_file
        return conf

    def kafka_python(self) -> dict[str, str]:
        """kafka-python keyword arguments (admin, indexer, lag report)."""
        kwargs = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.uses_sasl:
            kwargs.update({"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.username,
                           "sasl_plain_password": self.password})
        if self.uses_tls and self.ca_file:
            kwargs["ssl_cafile"] = self.ca_file
        return kwargs

    def java_properties(self) -> dict[str, str]:
        """Java client properties (the Flink job's Kafka source and sink, a broker's own clients)."""
        props = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol}
        if self.uses_sasl:
            props["sasl.mechanism"] = self.sasl_mechanism
            props["sasl.jaas.config"] = (f"{_JAAS_MODULES[self.sasl_mechanism]} required username="
                                         f"{_jaas_quote(self.username)} password={_jaas_quote(self.password)};")
        if self.uses_tls and self.ca_file:
            props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": self.ca_file})
        return props

    # Passed to streamctl's own processes (producer, indexer) as environment variables.
    _ENV_FIELDS = ("bootstrap", "security_protocol", "sasl_mechanism", "username", "password", "ca_file")

    def to_env(self, prefix: str) -> dict[str, str]:
        return {f"{prefix}_KAFKA_{name.upper()}": getattr(self, name) for name in self._ENV_FIELDS}

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str, default_bootstrap: str = "127.0.0.1:9092") -> "KafkaAccess":
        values = {name: env.get(f"{prefix}_KAFKA_{name.upper()}", "") for name in cls._ENV_FIELDS}
        values["bootstrap"] = values["bootstrap"] or default_bootstrap
        values["security_protocol"] = values["security_protocol"] or PLAINTEXT
        return cls(**values)
