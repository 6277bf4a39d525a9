"""One module per command (or group of related commands); importing them registers them."""

from streamctl.cli.commands import config_cmd, fetch, stack  # noqa: F401
