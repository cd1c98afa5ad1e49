"""How long-running library calls report progress, without printing.

Library code calls a ``Progress``; the interface decides whether that draws a
bar (on a terminal) or nothing (piped, ``--json``, the Python API).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress of one long task."""

    def start(self, total: int, description: str) -> None:
        """A task of ``total`` steps begins."""

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps are done."""

    def finish(self) -> None:
        """The task ended (successfully or not)."""


class NoProgress:
    """A Progress that reports nothing."""

    def start(self, total: int, description: str) -> None:
        """Ignore the start."""

    def advance(self, steps: int = 1) -> None:
        """Ignore the step."""

    def finish(self) -> None:
        """Ignore the end."""
