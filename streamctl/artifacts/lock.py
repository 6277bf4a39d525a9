"""connectors.lock: every artifact the stack downloads, with its checksum, as reviewable TOML."""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from streamctl.errors import ArtifactError

LOCK_VERSION = 1
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class Role:
    """What an artifact is for; each runtime picks the roles it needs."""

    FLINK_CONNECTOR = "flink-connector"  # on the Flink cluster's and client's classpath
    KAFKA_BROKER = "kafka-broker"  # classpath of the local Kafka broker
    ELASTICSEARCH = "elasticsearch-distribution"  # zip unpacked for the local Elasticsearch

    ALL = (FLINK_CONNECTOR, KAFKA_BROKER, ELASTICSEARCH)


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    extension: str
    classifier: str
    sha256: str
    size: int
    role: str

    @property
    def coordinates(self) -> str:
        parts = [self.group, self.artifact, self.extension]
        if self.classifier:
            parts.append(self.classifier)
        parts.append(self.version)
        return ":".join(parts)

    @property
    def file_name(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.{self.extension}"

    @property
    def repository_path(self) -> str:
        """The path below a Maven repository's root (the standard layout)."""
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"

    @property
    def cache_path(self) -> str:
        """Where it lives in the cache: grouped by role, then the repository layout (no name clashes)."""
        return f"{self.role}/{self.repository_path}"


@dataclass(frozen=True)
class Lock:
    artifacts: tuple[Artifact, ...]

    def by_role(self, role: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.role == role]

    @property
    def total_size(self) -> int:
        return sum(a.size for a in self.artifacts)


_FIELDS = {"group": str, "artifact": str, "version": str, "extension": str, "classifier": str,
           "sha256": str, "size": int, "role": str}


def parse_lock(text: str, source: str = "connectors.lock") -> Lock:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ArtifactError(f"{source} is not valid TOML: {exc}", hint="regenerate it with `make lock`") from None
    if data.get("lock_version") != LOCK_VERSION:
        raise ArtifactError(f"{source}: lock_version must be {LOCK_VERSION}", hint="regenerate it with `make lock`")
    entries = data.get("artifact")
    if not isinstance(entries, list) or not entries:
        raise ArtifactError(f"{source} lists no [[artifact]]", hint="regenerate it with `make lock`")
    artifacts = []
    for i, entry in enumerate(entries, 1):
        where = f"{source} artifact #{i}"
        if set(entry) != set(_FIELDS):
            missing, extra = set(_FIELDS) - set(entry), set(entry) - set(_FIELDS)
            raise ArtifactError(f"{where}: missing {sorted(missing)} / unknown {sorted(extra)} keys",
                                hint="regenerate it with `make lock`")
        for key, typ in _FIELDS.items():
            if not isinstance(entry[key], typ) or isinstance(entry[key], bool):
                raise ArtifactError(f"{where}: {key} must be {typ.__name__}", hint="regenerate it with `make lock`")
        artifact = Artifact(**entry)
        if not SHA256_RE.match(artifact.sha256):
            raise ArtifactError(f"{where}: sha256 is not 64 lower-case hex digits", hint="regenerate it")
        if artifact.size <= 0 or artifact.role not in Role.ALL:
            raise ArtifactError(f"{where}: bad size or role {artifact.role!r}", hint="regenerate it")
        artifacts.append(artifact)
    seen = set()
    for a in artifacts:
        if a.cache_path in seen:
            raise ArtifactError(f"{source}: {a.coordinates} is listed twice for role {a.role}", hint="regenerate it")
        seen.add(a.cache_path)
    return Lock(tuple(artifacts))


def read_lock(path: Path) -> Lock:
    if not path.is_file():
        raise ArtifactError(f"{path} not found", hint="run streamctl from a checkout that has connectors.lock")
    return parse_lock(path.read_text(), str(path))


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_lock(lock: Lock, header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["", f"lock_version = {LOCK_VERSION}", ""]
    for a in sorted(lock.artifacts, key=lambda a: (Role.ALL.index(a.role), a.group, a.artifact)):
        lines.append("[[artifact]]")
        for key, value in asdict(a).items():
            lines.append(f"{key} = {value}" if isinstance(value, int) else f"{key} = {_toml_str(value)}")
        lines.append("")
    return "\n".join(lines)
