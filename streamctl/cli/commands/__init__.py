"""One module per command (or group of related commands); importing them registers them."""

from streamctl.cli.commands import bench, config_cmd, demo, fetch, images_cmd, job_cmd, load_cmd, pictures, stack, validate_cmd

__all__ = ["bench", "config_cmd", "demo", "fetch", "images_cmd", "job_cmd", "load_cmd", "pictures", "stack", "validate_cmd"]
