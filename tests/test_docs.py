"""The README documents every command, and its Python example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import typer.main

from nearindex.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def readme() -> str:
    return README.read_text()


def test_every_command_is_documented() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name in commands:
        assert re.search(rf"`{name}\b", readme()), f"command {name!r} is not documented in README.md"


def test_the_python_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", readme(), flags=re.S)
    assert blocks, "README.md has no Python example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "3 images, 1 duplicate group" in result.stdout


def test_the_quick_start_has_exactly_two_commands_and_ci_runs_the_second() -> None:
    text = readme()
    quick_start = text.split("## Quick start")[1].split("\n## ")[0]
    commands = re.findall(r"```sh\n(.*?)```", quick_start, flags=re.S)
    assert len(commands) == 2 and all(c.count("\n") == 1 for c in commands)
    assert "nearindex demo" in commands[0] and "pytest" in commands[1]
    assert "test-command" in (README.parent / ".ci" / "run").read_text()
