"""Layering: imports only go down, and the three mechanism stacks stay apart.

See ``shared/STYLE.md``: interface -> use cases -> facade -> mechanisms ->
shared. Only the interface imports typer or rich; only ``database`` combines
the metadata and vector stacks; nothing imports ``cli`` but the two entry points.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nearindex"

LAYERS = {
    "interface": {"cli", "command", "__main__", "output", "__init__", "web"},
    "use_cases": {
        "api",
        "ingest",
        "search",
        "duplicates",
        "calibration",
        "demo",
        "workers",
        "filetree",
        "evaluation",
        "cluster",
        "pair_pool",
    },
    "facade": {"database"},
    "pixels": {
        "images",
        "features",
        "planes",
        "placement",
        "rescore",
        "smooth",
        "borders",
        "colour",
        "exclusion",
        "relation",
        "intake",
        "synthetic",
        "alignment",
        "difference",
    },
    "metadata": {"models", "engine", "migrate", "catalog"},
    "vectors": {"vectors"},
    "storage": {"stores"},
    "shared": {"errors", "settings", "progress"},
}
#: What each layer may import from nearindex (besides itself).
ALLOWED = {
    "interface": {"use_cases", "facade", "pixels", "metadata", "vectors", "storage", "shared"},
    "use_cases": {"use_cases", "facade", "pixels", "metadata", "storage", "shared"},
    "facade": {"metadata", "vectors", "shared"},
    "pixels": {"shared"},
    "metadata": {"shared"},
    "vectors": {"shared"},
    "storage": {"shared"},
    "shared": set(),
}
THIRD_PARTY = {
    "interface": {"typer", "rich", "numpy", "fastapi", "starlette", "uvicorn"},
    "use_cases": {"numpy", "distributed"},
    "facade": {"numpy", "sqlalchemy"},
    "pixels": {"cv2", "numpy"},
    "metadata": {"sqlalchemy", "alembic"},
    "vectors": {"faiss", "numpy"},
    "storage": {"fsspec"},
    "shared": set(),
}
STDLIB_AND_SELF = {"nearindex", "__future__"}


def layer_of(module: str) -> str:
    return next(layer for layer, members in LAYERS.items() if module in members)


def imports_of(path: Path) -> set[str]:
    """Top-level names imported by a module; relative imports as nearindex.<name>."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = node.module or ""
                names = [base] if base else [alias.name for alias in node.names]
                found.update(f"nearindex.{name.split('.')[0]}" for name in names)
            elif node.module:
                found.add(node.module)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert {p.stem for p in modules()} == set().union(*LAYERS.values())


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.stem)
def test_imports_only_go_down(path: Path) -> None:
    layer = layer_of(path.stem)
    for name in imports_of(path):
        root = name.split(".")[0]
        if root == "nearindex" and "." in name:
            target = name.split(".")[1]
            if target in {"migrations"}:
                continue
            assert target != "cli" or path.stem in {"__main__", "command"}, f"{path.stem} imports cli"
            target_layer = layer_of(target)
            assert target_layer == layer or target_layer in ALLOWED[layer], f"{path.stem} ({layer}) imports {target}"
        elif root not in STDLIB_AND_SELF and root not in _stdlib():
            assert root in THIRD_PARTY[layer], f"{path.stem} ({layer}) imports third-party {root}"


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names)
