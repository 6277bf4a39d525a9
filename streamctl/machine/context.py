"""What a runtime's processes on this machine share: the settings, Java, the secrets, the service
account (when streamctl runs as root), and the stack's endpoints as this machine reaches them."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from streamctl.config import Settings
from streamctl.endpoints import Endpoints
from streamctl.kafka_access import KafkaAccess
from streamctl.machine.java import Java
from streamctl.machine.supervisor import RunAs
from streamctl.secrets import Secrets


@dataclass
class LocalContext:
    settings: Settings
    java: Java
    secrets: Secrets
    run_as: RunAs | None  # set when streamctl runs as root
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def stack_dir(self) -> Path:
        return self.settings.stack_dir

    @property
    def host(self) -> str:
        return self.settings.bind_address

    @functools.cached_property
    def endpoints(self) -> Endpoints:
        """The stack's services as this machine's clients reach them (secrets read once)."""
        return Endpoints.of(self.settings, self.secrets)

    @property
    def kafka(self) -> KafkaAccess:
        return self.endpoints.kafka

    def service_dir(self, name: str) -> Path:
        return self.stack_dir / name

    def own(self, path: Path) -> None:
        """Hand a directory tree to the unprivileged account (when running as root)."""
        if self.run_as is None:
            return
        os.chown(path, self.run_as.uid, self.run_as.gid)
        for root, dirs, files in os.walk(path):
            os.chown(root, self.run_as.uid, self.run_as.gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.run_as.uid, self.run_as.gid, follow_symlinks=False)
