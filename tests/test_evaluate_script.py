"""``scripts/evaluate.py``'s ground truth: relatives judged by eye count like plain copies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from nearindex import synthetic

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


def test_the_worker_processes_give_what_one_process_gives(tmp_path: Path) -> None:
    import nearindex
    from nearindex.search import score_pair

    collection = []
    for seed in range(5):
        collection.append(tmp_path / f"scene{seed}.png")
        synthetic.write_image(collection[-1], synthetic.make_scene(seed, width=320, height=240))
    jobs = []  # 10 queries: more than one chunk of evaluate_nearindex's pool.map
    donor = synthetic.make_scene(9)
    for index in range(5):
        scene = synthetic.make_scene(index, width=320, height=240)
        for name in ("crop75", "flip"):
            edited = tmp_path / f"edit{index}-{name}.png"
            synthetic.write_image(edited, synthetic.apply_edit(scene, name, donor=donor))
            jobs.append((name, edited, collection[index]))
    # The last edit is paired with a scene it does not show, so its rank differs from the others'.
    families = {path: {i} for i, path in enumerate(collection)}
    jobs[-1] = (jobs[-1][0], jobs[-1][1], collection[0])
    negatives = [(0, 1), (2, 3), (1, 3), (0, 4)]

    raw = evaluate.evaluate_nearindex(collection, jobs, negatives, families, workers=2)

    with nearindex.open(tmp_path / "db") as db:
        db.add(*collection)
        ranks = [evaluate.rank_in_results(db.query(e, k=10), {str(o)}) for _, e, o in jobs]
    side = evaluate._side  # what compare scores a file with, in this process
    assert len(set(ranks)) > 1
    assert raw["ranks"] == ranks
    assert raw["positives"] == [score_pair(side(e), side(o)).score for _, e, o in jobs]
    assert raw["negatives"] == [score_pair(side(collection[a]), side(collection[b])).score for a, b in negatives]


def test_the_smooth_collection_is_smooth_distinct_pictures_in_colour(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "smooth_collection.py"
    subprocess.run([sys.executable, str(script), str(tmp_path), "--count", "3", "--width", "96", "--height", "64"],
                   check=True, capture_output=True)  # fmt: skip
    images = [cv2.imread(str(path)) for path in sorted(tmp_path.glob("*.png"))]
    assert len(images) == 6 and all(image.shape == (64, 96, 3) for image in images)
    scene = synthetic.make_scene(0, width=96, height=64).astype(np.int16)
    for image in images:
        steps = [np.abs(np.diff(image.astype(np.int16), axis=axis)).max() for axis in (0, 1)]
        assert max(steps) < min(np.abs(np.diff(scene, axis=axis)).max() for axis in (0, 1))  # no edges
        assert np.abs(image[..., 0].astype(np.int16) - image[..., 2]).max() > 0  # in colour
    assert len({image.tobytes() for image in images}) == 6


def test_distinct_is_only_for_a_folder() -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "evaluate.py"
    run = subprocess.run([sys.executable, str(script), "--distinct"], capture_output=True, text=True)
    assert run.returncode == 2 and "--distinct needs --folder" in run.stderr
