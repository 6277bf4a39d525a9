"""The external clusters' access: Kafka, Flink, PostgreSQL and Elasticsearch that someone else runs,
read from the `external.*` settings (the external runtime's; Endpoints.of reads them for it).
Passwords are never settings: each is named by an environment variable (`password_env`) or a file
(`password_file`) and read when needed."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from streamctl.access import ElasticsearchAccess, PostgresAccess
from streamctl.config import Settings, env_name
from streamctl.errors import ConfigError
from streamctl.kafka_access import SASL_MECHANISMS, SECURITY_PROTOCOLS, KafkaAccess


def read_secret(section: str, password_env: str, password_file: str) -> str:
    """The password an `external.<section>` names; empty when it names none."""
    if password_env and password_file:
        raise ConfigError(f"external.{section} names both password_env and password_file",
                          hint=f"keep one of external.{section}.password_env and .password_file")
    if password_env:
        if password_env not in os.environ:
            raise ConfigError(f"external.{section}.password_env names {password_env}, which is not set",
                              hint=f"export {password_env}=... before running streamctl")
        return os.environ[password_env]
    if password_file:
        path = Path(password_file).expanduser()
        try:
            return path.read_text().rstrip("\n")
        except OSError as exc:
            raise ConfigError(f"external.{section}.password_file {path} cannot be read ({exc.strerror})",
                              hint=f"fix external.{section}.password_file") from None
    return ""


def _required(value: str, name: str) -> str:
    if not value:
        raise ConfigError(f"{name} is not set, and the external runtime needs it",
                          hint=f"set {name} in streamctl.yaml (or {env_name(name)})")
    return value


def _ca(path: str, name: str) -> str:
    if path and not Path(path).expanduser().is_file():
        raise ConfigError(f"{name} {path} does not exist", hint=f"fix {name}")
    return str(Path(path).expanduser()) if path else ""


def external_kafka(settings: Settings) -> KafkaAccess:
    k = settings.external.kafka
    bootstrap = _required(k.bootstrap_servers, "external.kafka.bootstrap_servers")
    if k.security_protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(f"external.kafka.security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)},"
                          f" got {k.security_protocol!r}", hint="fix external.kafka.security_protocol")
    access = KafkaAccess(bootstrap, k.security_protocol, k.sasl_mechanism, k.username,
                         read_secret("kafka", k.password_env, k.password_file),
                         _ca(k.ca_file, "external.kafka.ca_file"))
    if access.uses_sasl:
        if k.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"external.kafka.sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)},"
                              f" got {k.sasl_mechanism!r}", hint="fix external.kafka.sasl_mechanism")
        _required(k.username, "external.kafka.username")
        if not access.password:
            raise ConfigError("external.kafka uses SASL but names no password",
                              hint="set external.kafka.password_env (a variable's name) or .password_file")
    return access


def external_postgres(settings: Settings) -> PostgresAccess:
    p = settings.external.postgres
    dsn = _required(p.dsn, "external.postgres.dsn")
    try:
        return PostgresAccess.from_dsn(dsn, read_secret("postgres", p.password_env, p.password_file))
    except ValueError as exc:
        raise ConfigError(f"external.postgres.dsn is not usable: {exc}", hint="fix external.postgres.dsn") from None


def external_elasticsearch(settings: Settings) -> ElasticsearchAccess:
    e = settings.external.elasticsearch
    if "@" in urlsplit(e.url).netloc:
        raise ConfigError("external.elasticsearch.url holds credentials",
                          hint="give the user in external.elasticsearch.username and the password by password_env"
                               " or password_file")
    return ElasticsearchAccess(_required(e.url, "external.elasticsearch.url").rstrip("/"), e.username,
                               read_secret("elasticsearch", e.password_env, e.password_file),
                               _ca(e.ca_file, "external.elasticsearch.ca_file"))


def external_url(settings: Settings, key: str) -> str:
    """A service's URL in someone else's cluster: the setting external.<key> ("section.key"), http://host:port."""
    section, name = key.split(".")
    url = _required(getattr(getattr(settings.external, section), name), f"external.{key}").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path:
        raise ConfigError(f"external.{key} must be http://host:port, got {url!r}",
                          hint="HTTPS to the REST API is not supported yet: reach it through a tunnel"
                               " (kubectl port-forward) or a plain-HTTP internal address")
    return url


def flink_rest_url(settings: Settings) -> str:
    return external_url(settings, "flink.rest_url")

