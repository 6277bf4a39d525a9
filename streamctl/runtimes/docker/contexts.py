"""Fill build contexts with what the Dockerfiles COPY: connector jars and other locked artifacts
from streamctl's verified cache, and wheels for streamctl's own Python services. Nothing inside a
build downloads anything."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

from streamctl.artifacts.fetch import cached_file
from streamctl.artifacts.lock import read_lock
from streamctl.errors import ArtifactError
from streamctl.paths import LOCK_FILE, PROJECT_ROOT, STACK_DIR

# What the producer, the indexer and the provisioning step import, pinned to the versions installed
# beside streamctl, so the containers run the code the tests ran.
APP_DISTRIBUTIONS = ("granian", "orjson", "confluent-kafka", "kafka-python", "elasticsearch", "psycopg2-binary", "pyyaml")
APP_STACK_FILES = ("postgres", "elasticsearch")


def link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, copy_function=link_or_copy, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def stage_artifacts(cache_dir: Path, role: str, target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    staged = []
    for artifact in read_lock(LOCK_FILE).by_role(role):
        source = cached_file(cache_dir, artifact)
        if not source.is_file():
            raise ArtifactError(f"{artifact.coordinates} is not in the cache {cache_dir}",
                                hint="run `streamctl fetch-connectors`")
        link_or_copy(str(source), str(target / source.name))
        staged.append(target / source.name)
    return staged


def app_requirements() -> str:
    lines = []
    for name in APP_DISTRIBUTIONS:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise ArtifactError(f"{name} is not installed beside streamctl", hint="run `make setup`") from None
    return "\n".join(lines) + "\n"


def app_wheels(cache_dir: Path) -> Path:
    """The wheels for APP_DISTRIBUTIONS and their dependencies, downloaded once from PyPI per set of versions."""
    requirements = app_requirements()
    folder = cache_dir / "wheels" / hashlib.sha256(requirements.encode()).hexdigest()[:16]
    if (folder / "requirements.txt").is_file():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "requested.txt").write_text(requirements)
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                             "--dest", str(partial), "-r", str(partial / "requested.txt")],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ArtifactError("could not download the wheels for the producer/indexer image from PyPI",
                            details=(result.stdout + result.stderr)[-1500:], hint="check the network or PIP_INDEX_URL")
    (partial / "requested.txt").rename(partial / "requirements.txt")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def stage_apps(cache_dir: Path, context: Path) -> None:
    copy_tree(app_wheels(cache_dir), context / "wheels")
    copy_tree(PROJECT_ROOT / "streamctl", context / "streamctl")
    for name in APP_STACK_FILES:
        copy_tree(STACK_DIR / name, context / "stack" / name)


def stager(cache_dir: Path):
    """The engine's hook for `x-streamctl-stage:` in stack/compose.yaml."""
    from streamctl.artifacts.lock import Role

    def stage(name: str, context: Path) -> None:
        if name == "connectors":
            stage_artifacts(cache_dir, Role.FLINK_CONNECTOR, context / "connectors")
        elif name == "apps":
            stage_apps(cache_dir, context)
        else:
            raise ArtifactError(f"unknown build stage {name!r} in the compose file", hint="use connectors or apps")

    return stage
