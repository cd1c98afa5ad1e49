"""The ``nearindex`` console script's entry point, apart from ``cli``.

Describing workers are ``spawn``-ed, and a ``spawn``-ed process first re-runs
the script that started the program (``multiprocessing`` rebuilds its main
module). A script importing ``cli`` made every worker import Typer, Rich,
SQLAlchemy, Alembic and FAISS before its first file; this one imports them
only when it runs the command line.
"""

from __future__ import annotations


def main() -> None:
    """Run the command line (``cli.main``)."""
    from .cli import main as run_command_line

    run_command_line()
