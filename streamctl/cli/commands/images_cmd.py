"""`streamctl build-images`: the docker runtime's images built here, with no image registry."""

from __future__ import annotations

import typer
import yaml

from streamctl.cli.app import app, stderr, stdout
from streamctl.cli.commands.fetch import fetch_artifacts
from streamctl.exit_codes import ExitCode


@app.command("build-images")
def build_images(
    ctx: typer.Context,
    rebuild: bool = typer.Option(False, "--rebuild", help="Build again even when an image of that tag exists."),
    offline: bool = typer.Option(False, "--offline", help="Do not download missing artifacts."),
) -> int:
    """Build Kafka, PostgreSQL, Elasticsearch, Flink and Python images from a debootstrap'd Debian and the
    verified artifacts, and print the docker.images settings that select them (Kibana and Kafka UI have no local build)."""
    from streamctl.flink.cluster import flink_home
    from streamctl.runtimes.docker.engine import connect
    from streamctl.runtimes.docker.local_images import build_local_images, local_versions
    from streamctl.runtimes.local.elasticsearch import unpack_distribution

    settings = ctx.obj.settings()
    client = connect()
    fetch_artifacts(settings.maven_repository, settings.cache_dir, offline, show_progress=stderr.is_terminal)
    versions = local_versions(settings.cache_dir)

    def progress(image: str, phase: str) -> None:
        colour = "green" if phase in ("built", "present") else "yellow"
        stdout.print(f"  {image}: [{colour}]{phase}[/]", highlight=False)

    result = build_local_images(client, settings.cache_dir, flink_home(), unpack_distribution(settings.cache_dir),
                                versions, rebuild, progress)
    stdout.print(f"[green]{len(result.built)} built, {len(result.present)} already present.[/] "
                 "Select them in streamctl.yaml:", highlight=False)
    block = {"docker": {"images": result.settings, "disabled_services": "kibana,kafka-ui"}}
    stdout.out(yaml.safe_dump(block, sort_keys=False).rstrip(), highlight=False)
    stdout.print("[dim]Kibana and Kafka UI are official images only; with them disabled, validate skips the "
                 "Kibana check.[/]", highlight=False)
    return ExitCode.OK
