"""``scripts/evaluate.py``'s ground truth: relatives judged by eye count like plain copies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import evaluate
from corpus_pairs import read_pair_rows


def test_relatives_join_both_ways_and_a_file_outside_the_collection_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pairs.tsv").write_text("# a\tb\trelation\nx.jpg\ty.jpg\tconsecutive frames\n")
    listed = read_pair_rows(evaluate.RELATIVES)
    collection = sorted({tmp_path / name for a, b, _ in listed for name in (a, b)})
    collection += [tmp_path / "photos" / name for name in ("x.jpg", "y.jpg", "z.jpg")]
    at = {path: index for index, path in enumerate(collection)}
    relatives = evaluate.find_relatives(collection, tmp_path)
    x, y, z = (at[tmp_path / "photos" / name] for name in ("x.jpg", "y.jpg", "z.jpg"))
    assert y in relatives[x] and x in relatives[y] and not relatives[z]
    for a, b, _ in listed:
        assert at[tmp_path / b] in relatives[at[tmp_path / a]] and at[tmp_path / a] in relatives[at[tmp_path / b]]
    with pytest.raises(SystemExit, match=r"pairs\.tsv: y\.jpg"):
        evaluate.find_relatives([path for path in collection if path.name != "y.jpg"], tmp_path)


def test_images_linked_through_copies_and_relatives_show_the_same_picture() -> None:
    copies = [{1}, {0}, set(), set(), set()]  # 0 = 1
    relatives = [set(), {2}, {1}, set(), set()]  # 1 ~ 2, so 0 ~ 2 too
    picture = evaluate.same_picture(copies, relatives)
    assert picture[0] == picture[1] == picture[2]
    assert len({picture[0], picture[3], picture[4]}) == 3


def test_every_listed_relative_says_how_it_relates_and_is_listed_once() -> None:
    listed = read_pair_rows(evaluate.RELATIVES)
    assert listed and all(a != b and how.strip() for a, b, how in listed)
    assert len({frozenset((a, b)) for a, b, _ in listed}) == len(listed)
    assert all(name.split("/")[0] in {"photos", "figures"} for a, b, _ in listed for name in (a, b))
