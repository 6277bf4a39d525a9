"""Per-stack secrets, generated at first `up` and kept with mode 0600 in the stack's state directory."""

from __future__ import annotations

import json
import os
import secrets as _random
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "secrets.json"


@dataclass(frozen=True)
class Secrets:
    postgres_password: str

    @classmethod
    def load_or_create(cls, stack_dir: Path) -> "Secrets":
        path = stack_dir / FILE_NAME
        if path.is_file():
            return cls(**json.loads(path.read_text()))
        stack_dir.mkdir(parents=True, exist_ok=True)
        created = cls(postgres_password=_random.token_urlsafe(24))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(created), f)
        return created

    @classmethod
    def load(cls, stack_dir: Path) -> "Secrets | None":
        path = stack_dir / FILE_NAME
        return cls(**json.loads(path.read_text())) if path.is_file() else None
