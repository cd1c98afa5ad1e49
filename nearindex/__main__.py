"""``python -m nearindex``: the command-line interface."""

from .cli import main

main()
