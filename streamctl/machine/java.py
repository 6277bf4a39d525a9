"""Find a Java development kit (the job's operator is compiled here) and its version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamctl.errors import PreflightError

MIN_JAVA = 17


@dataclass(frozen=True)
class Java:
    home: Path
    version: int

    @property
    def binary(self) -> Path:
        return self.home / "bin" / "java"


def _version_of(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java(java_home_setting: str = "") -> Java:
    """settings.java_home, then JAVA_HOME, then `java` on PATH."""
    candidates: list[tuple[str, Path]] = []
    if java_home_setting:
        candidates.append(("java_home setting", Path(java_home_setting) / "bin" / "java"))
    if os.environ.get("JAVA_HOME"):
        candidates.append(("JAVA_HOME", Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(("PATH", Path(os.path.realpath(on_path))))
    for source, java in candidates:
        if not java.is_file():
            if source != "PATH":
                raise PreflightError(f"{source} points at {java.parent.parent}, which has no bin/java",
                                     hint="set java_home (or JAVA_HOME) to a Java 17+ installation")
            continue
        version = _version_of(java)
        if version is None:
            raise PreflightError(f"{java} did not report a Java version", hint="check the Java installation")
        if version < MIN_JAVA:
            raise PreflightError(f"Java {version} found at {java} ({source}); Kafka 4, Flink 1.20 and "
                                 f"Elasticsearch 8 need Java {MIN_JAVA}+",
                                 hint="apt-get install openjdk-17-jdk-headless, or set java_home")
        home = java.parent.parent
        if not (home / "bin" / "javac").is_file():
            raise PreflightError(f"{home} ({source}) is a Java runtime without a compiler (bin/javac): streamctl"
                                 " compiles the Flink job's operator from source",
                                 hint="apt-get install openjdk-17-jdk-headless, or set java_home to a JDK")
        return Java(home, version)
    raise PreflightError("no Java found (java_home setting, JAVA_HOME and PATH are empty)",
                         hint="apt-get install openjdk-17-jdk-headless, or set java_home / JAVA_HOME")
