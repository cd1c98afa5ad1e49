"""`nearindex diff` and `nearindex.diff`: real files in, regions, JSON and the picture out."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

import nearindex
from nearindex import synthetic
from nearindex.cli import app

runner = CliRunner()


def _pasted_pair(folder: Path) -> tuple[Path, Path, tuple[int, int, int, int]]:
    """A scene, its copy with a patch of another scene pasted in (JPEG), and the patch's box."""
    original = synthetic.make_scene(3)
    faked = synthetic.paste_patch(original, synthetic.make_scene(8), area=0.06, seed=5)
    changed = np.argwhere(np.abs(faked.astype(int) - original.astype(int)).max(axis=2) > 0)
    (y0, x0), (y1, x1) = changed.min(axis=0), changed.max(axis=0)
    first, second = folder / "original.png", folder / "faked.jpg"
    synthetic.write_image(first, original)
    synthetic.write_image(second, faked, quality=90)
    return first, second, (int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1))


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    height = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = width * height
    return inter / (aw * ah + bw * bh - inter)


def test_diff_finds_a_pasted_patch_and_writes_the_picture(tmp_path: Path) -> None:
    first, second, truth = _pasted_pair(tmp_path)
    picture = tmp_path / "diff.png"
    result = runner.invoke(app, ["diff", str(first), str(second), "--json", "--out", str(picture)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document["transform"]) == 3 and all(len(row) == 3 for row in document["transform"])
    assert max(_iou(tuple(region["box_a"]), truth) for region in document["regions"]) >= 0.5
    drawn = cv2.imread(str(picture))
    assert drawn is not None and drawn.shape[1] > cv2.imread(str(first)).shape[1]


def test_an_untouched_reencoded_copy_has_no_region(tmp_path: Path) -> None:
    original = synthetic.make_scene(4)
    synthetic.write_image(tmp_path / "a.png", original)
    synthetic.write_image(tmp_path / "b.jpg", synthetic.scale(original, factor=0.5), quality=40)
    found = nearindex.diff(tmp_path / "a.png", tmp_path / "b.jpg")
    assert found.regions == () and found.score > 0.9
    text = runner.invoke(app, ["diff", str(tmp_path / "a.png"), str(tmp_path / "b.jpg")])
    assert "nothing changed" in text.stdout


def test_diff_names_the_bad_file_in_one_line(tmp_path: Path) -> None:
    first, _, _ = _pasted_pair(tmp_path)
    (tmp_path / "text.jpg").write_text("not an image")
    result = runner.invoke(app, ["diff", str(first), str(tmp_path / "text.jpg")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"nearindex: {tmp_path / 'text.jpg'}: ") and result.stderr.count("\n") == 1


def test_an_unwritable_picture_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    first, second, _ = _pasted_pair(tmp_path)
    for target, reason in ((tmp_path / "diff.txt", "not an image file name"), (tmp_path / "no" / "d.png", "cannot")):
        result = runner.invoke(app, ["diff", str(first), str(second), "--out", str(target)])
        assert result.exit_code == 1 and reason in result.stderr and result.stderr.count("\n") == 1
        assert not target.exists()
