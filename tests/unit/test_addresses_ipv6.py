"""Addresses on an IPv6 bind address: a host:port or a URL puts the address in brackets (RFC 3986),
the same on every runtime; an IPv4 address or a name is written as before."""

from __future__ import annotations

from streamctl.config import load_settings
from streamctl.endpoints import Endpoints, PostgresAccess
from streamctl.secrets import Secrets


def settings(tmp_path, bind_address: str):
    return load_settings(env={}, cwd=tmp_path, overrides={"state_dir": str(tmp_path), "bind_address": bind_address})


def test_an_ipv6_bind_address_is_bracketed_in_every_url_and_host_port(tmp_path):
    endpoints = Endpoints.of(settings(tmp_path, "::1"), Secrets("pg"))
    assert endpoints.flink_url == "http://[::1]:8081"
    assert endpoints.producer_url.startswith("http://[::1]:")
    assert endpoints.elasticsearch_url.startswith("http://[::1]:")
    assert endpoints.kibana_url.startswith("http://[::1]:")
    assert endpoints.kafka_bootstrap.startswith("[::1]:")
    assert endpoints.postgres_host == "::1"  # the host itself, as libpq and socket calls take it
    assert "@[::1]:" in endpoints.postgres_dsn() and "//[::1]:" in endpoints.postgres.jdbc_url()


def test_an_ipv4_bind_address_and_a_dsn_read_back_are_written_as_before(tmp_path):
    endpoints = Endpoints.of(settings(tmp_path, "127.0.0.1"), Secrets("pg"))
    assert endpoints.flink_url == "http://127.0.0.1:8081"
    assert endpoints.kafka_bootstrap == "127.0.0.1:9092"
    dsn = "postgresql://app@[2001:db8::5]:6432/sales?sslmode=require"
    assert PostgresAccess.from_dsn(dsn, "pw").dsn(with_password=False) == dsn
