"""The Flink job's Java operator (stack/flink/java), compiled against the Flink distribution the
client runs, so it always matches the cluster's Flink version (client and cluster must match).

Compiled once per source and Flink version into the artifact cache (about 2 s); the client ships the
jar with the job (pipeline.jars), so every runtime's cluster gets it the same way."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from streamctl.errors import PreflightError, StartupError
from streamctl.paths import STACK_DIR

JAVA_SOURCES = STACK_DIR / "flink" / "java"
# Bytecode every Flink 1.20 cluster runs (Java 11 and later), whatever JDK compiles it.
JAVA_RELEASE = "11"


def _digest(flink_lib: Path) -> str:
    digest = hashlib.sha256(JAVA_RELEASE.encode())
    for source in sorted(JAVA_SOURCES.rglob("*.java")):
        digest.update(source.relative_to(JAVA_SOURCES).as_posix().encode() + b"\0" + source.read_bytes())
    for jar in sorted(flink_lib.glob("flink-*.jar")):  # the Flink version, by its jars' names
        digest.update(jar.name.encode())
    return digest.hexdigest()[:16]


def job_jar(java_home: Path, flink_home: Path, cache_dir: Path) -> Path:
    """The compiled operator's jar, built when missing."""
    jar = cache_dir / "job" / f"streamctl-job-{_digest(flink_home / 'lib')}.jar"
    if jar.is_file():
        return jar
    javac = java_home / "bin" / "javac"
    if not javac.is_file():
        raise PreflightError(f"{java_home} is a Java runtime without a compiler (no bin/javac): the job's"
                             " operator is compiled from source",
                             hint="apt-get install openjdk-17-jdk-headless, or set java_home to a JDK")
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="streamctl-job-") as work:
        classes = Path(work) / "classes"
        argv = [str(javac), "-nowarn", "--release", JAVA_RELEASE, "-encoding", "UTF-8", "-d", str(classes),
                "-cp", str(flink_home / "lib" / "*"), *map(str, sorted(JAVA_SOURCES.rglob("*.java")))]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise StartupError("compiling the job's Java operator failed", details=(result.stdout + result.stderr)[-3000:],
                               hint=f"javac: {javac}")
        partial = Path(work) / "job.jar"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: streamctl\r\n\r\n")
            for compiled in sorted(classes.rglob("*.class")):
                archive.write(compiled, compiled.relative_to(classes).as_posix())
        shutil.copyfile(partial, jar.with_suffix(".partial"))
        os.replace(jar.with_suffix(".partial"), jar)
    for old in jar.parent.glob("streamctl-job-*.jar"):  # earlier sources' builds
        if old != jar:
            old.unlink(missing_ok=True)
    return jar
