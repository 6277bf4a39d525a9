"""Maintainer tool: regenerate connectors.lock by letting Maven resolve each role's runtime closure.

    python -m streamctl.artifacts.lockgen        (or: make lock)

Maven does the resolving (versions, conflicts, exclusions); this module only writes what Maven
resolved into the lock, with each file's sha256 and size.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from streamctl.artifacts.lock import Artifact, Lock, Role, render_lock
from streamctl.paths import LOCK_FILE

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"


@dataclass(frozen=True)
class Root:
    coordinates: str  # group:artifact:version[:type]
    transitive: bool = True
    exclusions: tuple[str, ...] = ()  # group:artifact


@dataclass(frozen=True)
class RoleSpec:
    role: str
    roots: tuple[Root, ...] = field(default_factory=tuple)


# Flink 1.20's flink-dist already carries flink-connector-base and slf4j; the JDBC jar bundles every
# dialect module, so its per-dialect dependencies would only duplicate its classes.
SPECS = (
    RoleSpec(Role.FLINK_CONNECTOR, (
        # The shaded flink-sql-connector-kafka is not served for 1.20 by Maven Central; the plain
        # connector plus its kafka-clients dependency is the same code.
        Root("org.apache.flink:flink-connector-kafka:3.4.0-1.20",
             exclusions=("org.apache.flink:flink-connector-base", "org.slf4j:slf4j-api")),
        Root("org.apache.flink:flink-connector-jdbc:3.3.0-1.20", transitive=False),
        Root("org.postgresql:postgresql:42.7.8", transitive=False),
    )),
    RoleSpec(Role.KAFKA_BROKER, (
        Root(f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"),
        # kafka_2.13 brings log4j-core and slf4j-api 1.7; this binds the two.
        Root(f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}"),
    )),
    RoleSpec(Role.ELASTICSEARCH, (
        Root("org.elasticsearch.distribution.integ-test-zip:elasticsearch:8.19.21:zip", transitive=False),
    )),
)


def _pom(spec: RoleSpec) -> str:
    deps = []
    for root in spec.roots:
        group, artifact, version, *rest = root.coordinates.split(":")
        kind = f"<type>{rest[0]}</type>" if rest else ""
        exclusions = list(root.exclusions) if root.transitive else ["*:*"]
        excl = "".join(
            f"<exclusion><groupId>{escape(g)}</groupId><artifactId>{escape(a)}</artifactId></exclusion>"
            for g, a in (e.split(":") for e in exclusions)
        )
        deps.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version>{kind}<exclusions>{excl}</exclusions></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>streamctl.lock</groupId><artifactId>resolve</artifactId><version>0</version>"
        f"<dependencies>{''.join(deps)}</dependencies></project>"
    )


def parse_dependency_list(text: str, role: str) -> list[Artifact]:
    """Parse `mvn dependency:list -DoutputAbsoluteArtifactFilename=true` output lines.

    A line is group:artifact:type[:classifier]:version:scope:/absolute/path.
    """
    artifacts = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("The following") or ":/" not in line:
            continue
        coords, path = line.split(":/", 1)
        parts = coords.split(":")
        if len(parts) == 5:
            group, artifact, ext, version, _scope = parts
            classifier = ""
        elif len(parts) == 6:
            group, artifact, ext, classifier, version, _scope = parts
        else:
            raise ValueError(f"unexpected Maven output line: {line}")
        file = Path("/" + path)
        artifacts.append(Artifact(group, artifact, version, ext, classifier, _sha256(file), file.stat().st_size, role))
    return artifacts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(spec: RoleSpec) -> list[Artifact]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SystemExit("mvn not found: install Maven (apt-get install maven)")
    with tempfile.TemporaryDirectory(prefix="streamctl-lock-") as tmp:
        Path(tmp, "pom.xml").write_text(_pom(spec))
        out = Path(tmp, "deps.txt")
        subprocess.run(
            [mvn, "-q", "-B", "dependency:list", "-DincludeScope=runtime",
             "-DoutputAbsoluteArtifactFilename=true", f"-DoutputFile={out}"],
            cwd=tmp, check=True,
        )
        return parse_dependency_list(out.read_text(), spec.role)


HEADER = """connectors.lock: every artifact streamctl downloads from a Maven repository (Maven Central by default).
Generated by `make lock` (python -m streamctl.artifacts.lockgen), which lets Maven resolve each role's
runtime closure. Do not edit by hand. Roles:
  flink-connector            Kafka and JDBC connectors and the PostgreSQL driver for the Flink cluster
  kafka-broker               Apache Kafka broker classpath (local runtime)
  elasticsearch-distribution Elasticsearch integ-test zip (local runtime)"""


def main() -> int:
    artifacts: list[Artifact] = []
    for spec in SPECS:
        resolved = resolve(spec)
        print(f"{spec.role}: {len(resolved)} artifacts", file=sys.stderr)
        artifacts.extend(resolved)
    LOCK_FILE.write_text(render_lock(Lock(tuple(artifacts)), HEADER))
    print(f"wrote {LOCK_FILE} ({len(artifacts)} artifacts)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
