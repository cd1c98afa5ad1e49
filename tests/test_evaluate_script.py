"""``scripts/evaluate.py``'s ground truth: relatives judged by eye count like plain copies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import evaluate
from corpus_pairs import read_pair_rows


def test_relatives_join_both_ways_and_a_name_outside_the_collection_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pairs.tsv").write_text("# a\tb\trelation\nx.jpg\ty.jpg\tconsecutive frames\n")
    listed = read_pair_rows(evaluate.RELATIVES)
    names = {name for a, b, _ in listed for name in (a, b)} | {"x.jpg", "y.jpg", "z.jpg"}
    collection = [tmp_path / "photos" / name for name in sorted(names)]
    at = {path.name: index for index, path in enumerate(collection)}
    relatives = evaluate.find_relatives(collection, tmp_path)
    assert at["y.jpg"] in relatives[at["x.jpg"]] and at["x.jpg"] in relatives[at["y.jpg"]]
    assert not relatives[at["z.jpg"]]
    assert all(at[b] in relatives[at[a]] and at[a] in relatives[at[b]] for a, b, _ in listed)
    with pytest.raises(SystemExit, match=r"y\.jpg"):
        evaluate.find_relatives([path for path in collection if path.name != "y.jpg"], tmp_path)


def test_every_listed_relative_says_how_it_relates_and_is_listed_once() -> None:
    listed = read_pair_rows(evaluate.RELATIVES)
    assert listed and all(a != b and how.strip() for a, b, how in listed)
    assert len({frozenset((a, b)) for a, b, _ in listed}) == len(listed)
