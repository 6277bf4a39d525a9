"""`streamctl build-images`: every image the docker runtime needs except Kibana and Kafka UI, built
on this machine with no image registry. The base is a Debian bookworm root file system made by
debootstrap and imported; on it go Debian's Java 17, PostgreSQL 15 and Python 3.11, then the
same verified artifacts the local runtime runs (Kafka jars, the Elasticsearch distribution, the
Flink distribution of the apache-flink package). The result is the `docker.images.*` settings
that point the compose file at them."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from streamctl.artifacts.lock import Role
from streamctl.errors import PreflightError, StartupError
from streamctl.paths import STACK_DIR
from streamctl.runtimes.docker.contexts import copy_tree, stage_artifacts
from streamctl.runtimes.docker.engine import LABEL_PROJECT, build_image

REPOSITORY = "streamctl-local"
BASE_IMAGE = f"{REPOSITORY}/base:bookworm"
RUNTIME_IMAGE = f"{REPOSITORY}/runtime:bookworm"
LOCAL_DOCKERFILES = STACK_DIR / "docker" / "local"
FLINK_PARTS = ("bin", "conf", "lib", "opt", "plugins")


@dataclass
class BuiltImages:
    settings: dict[str, str] = field(default_factory=dict)  # docker.images.<key> -> image
    built: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)


def local_versions(cache_dir: Path) -> dict[str, str]:
    """The versions the local images are tagged with: those of the artifacts they are built from."""
    import importlib.metadata

    from streamctl.artifacts.lock import read_lock
    from streamctl.paths import LOCK_FILE

    lock = read_lock(LOCK_FILE)
    return {
        "kafka": next(a.version for a in lock.by_role(Role.KAFKA_BROKER) if a.artifact == "kafka_2.13"),
        "elasticsearch": lock.by_role(Role.ELASTICSEARCH)[0].version,
        "flink": importlib.metadata.version("apache-flink"),
    }


def local_image_settings(versions: dict[str, str]) -> dict[str, str]:
    """docker.images.<key> -> the local image's tag."""
    return {
        "python_base": RUNTIME_IMAGE,
        "postgres": f"{REPOSITORY}/postgres:15",
        "kafka": f"{REPOSITORY}/kafka:{versions['kafka']}",
        "elasticsearch": f"{REPOSITORY}/elasticsearch:{versions['elasticsearch']}",
        "flink_base": f"{REPOSITORY}/flink:{versions['flink']}",
    }


def _image_exists(client, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.api.inspect_image(tag)
        return True
    except ImageNotFound:
        return False


def build_base(client, work: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise PreflightError("debootstrap is not installed", hint="apt-get install debootstrap (Debian/Ubuntu)")
    rootfs = work / "rootfs"
    result = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs)], capture_output=True, text=True)
    if result.returncode != 0:
        raise StartupError("debootstrap of Debian bookworm failed", details=(result.stdout + result.stderr)[-1500:],
                           hint="it needs root and access to Debian's package mirror")
    tarball = work / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
    repository, tag = BASE_IMAGE.split(":")
    client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)


def build_local_images(client, cache_dir: Path, flink_home: Path, es_distribution: Path, versions: dict[str, str],
                       rebuild: bool = False, progress: Callable[[str, str], None] = lambda image, phase: None) -> BuiltImages:
    """Build (or find) each image; `versions` gives the tags: kafka, elasticsearch, flink."""
    out = BuiltImages()
    tags = local_image_settings(versions)
    with tempfile.TemporaryDirectory(prefix="streamctl-images-", dir=cache_dir) as tmp:
        work = Path(tmp)

        def image(tag: str, build: Callable[[], None]) -> str:
            if not rebuild and _image_exists(client, tag):
                out.present.append(tag)
                progress(tag, "present")
                return tag
            progress(tag, "building")
            build()
            out.built.append(tag)
            progress(tag, "built")
            return tag

        def from_dir(name: str, tag: str, fill: Callable[[Path], object] = lambda ctx: None) -> str:
            def build() -> None:
                context = work / name
                copy_tree(LOCAL_DOCKERFILES / name, context)
                fill(context)
                build_image(client.api, context, tag, {"RUNTIME_IMAGE": RUNTIME_IMAGE, "BASE_IMAGE": BASE_IMAGE},
                            {LABEL_PROJECT: "streamctl-local-images"})
            return image(tag, build)

        image(BASE_IMAGE, lambda: build_base(client, work))
        out.settings["python_base"] = from_dir("runtime", tags["python_base"])
        out.settings["postgres"] = from_dir("postgres", tags["postgres"])
        out.settings["kafka"] = from_dir("kafka", tags["kafka"],
                                         lambda ctx: stage_artifacts(cache_dir, Role.KAFKA_BROKER, ctx / "libs"))
        out.settings["elasticsearch"] = from_dir("elasticsearch", tags["elasticsearch"],
                                                 lambda ctx: copy_tree(es_distribution, ctx / "distribution"))

        def flink_parts(ctx: Path) -> None:
            for part in FLINK_PARTS:
                copy_tree(flink_home / part, ctx / "flink" / part)

        out.settings["flink_base"] = from_dir("flink", tags["flink_base"], flink_parts)
    return out
