"""The public API: a sorted ``__all__`` whose every name exists and is documented."""

from __future__ import annotations

import inspect

import nearindex


def test_all_is_sorted_and_complete() -> None:
    assert nearindex.__all__ == sorted(nearindex.__all__)
    public = {name for name in dir(nearindex) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(nearindex, name))}
    assert set(nearindex.__all__) - {"__version__"} == public - modules


def test_every_exported_member_has_a_docstring() -> None:
    for name in nearindex.__all__:
        member = getattr(nearindex, name)
        if callable(member):
            assert inspect.getdoc(member), f"nearindex.{name} has no docstring"


def test_result_types_are_frozen_dataclasses() -> None:
    for cls in (
        nearindex.Match,
        nearindex.Comparison,
        nearindex.DuplicateGroup,
        nearindex.IngestReport,
        nearindex.Info,
    ):
        assert cls.__dataclass_params__.frozen, cls.__name__  # type: ignore[attr-defined]
