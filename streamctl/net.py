"""host:port and URLs, written one way everywhere: an IPv6 address in brackets (RFC 3986), an IPv4
address or a name as it is."""

from __future__ import annotations


def bracketed(host: str) -> str:
    """The host as it stands in a host:port or a URL: `::1` -> `[::1]`."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def host_port(host: str, port: int | str) -> str:
    return f"{bracketed(host)}:{port}"


def http_url(host: str, port: int | str, scheme: str = "http") -> str:
    return f"{scheme}://{host_port(host, port)}"
