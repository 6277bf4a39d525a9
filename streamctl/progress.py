"""How long work reports its steps: a callback per step and phase, and the one that nobody watches."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def update(self, step: str, phase: str, detail: str = "") -> None: ...


class NoProgress:
    def update(self, step: str, phase: str, detail: str = "") -> None: ...


NO_PROGRESS = NoProgress()  # the default where nobody watches (it holds no state)
