"""Per-stack secrets, generated at first `up` and kept with mode 0600 in the stack's state directory."""

from __future__ import annotations

import json
import os
import secrets as _random
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "secrets.json"


KAFKA_USER = "streamctl"  # the SCRAM user of a local cluster with kafka.security: sasl_ssl


@dataclass(frozen=True)
class Secrets:
    postgres_password: str
    kafka_password: str = ""  # stacks made before SASL existed have none until their next `up`

    @classmethod
    def load_or_create(cls, stack_dir: Path) -> "Secrets":
        path = stack_dir / FILE_NAME
        existing = cls.load(stack_dir)
        if existing is not None and existing.kafka_password:
            return existing
        stack_dir.mkdir(parents=True, exist_ok=True)
        created = cls(postgres_password=existing.postgres_password if existing else _random.token_urlsafe(24),
                      kafka_password=_random.token_urlsafe(24))
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(created), f)
        os.replace(tmp, path)
        return created

    @classmethod
    def load(cls, stack_dir: Path) -> "Secrets | None":
        path = stack_dir / FILE_NAME
        return cls(**json.loads(path.read_text())) if path.is_file() else None
