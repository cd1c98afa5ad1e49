#!/usr/bin/env python3
"""How nearindex relates each generated edit of the corpus to its original (the README's relation figures).

For every edit of ``scripts/evaluate.py`` (the same seeded, cached files), the
original is scored and related to the edit as ``query`` and ``compare`` do,
with the original as the query (so a crop of it is a ``crop``): per edit, the
share of each relation kind and the share marked ``edited``.

Usage: python scripts/evaluate_relations.py [--corpus DIR] [--cache DIR] [--edit-as-query] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from nearindex.search import relation_of, score_pair
from nearindex.settings import DEFAULT_SETTINGS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_pairs import DEFAULT_CORPUS
from evaluate import EDIT_NAMES, _side, choose_collection, make_edits


def main(argv: list[str] | None = None) -> int:
    """Print (and write as JSON) the relation kinds and edited shares per edit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "nearindex-eval")
    parser.add_argument("--edit-as-query", action="store_true", help="query with the edit instead of the original")
    parser.add_argument("--json", type=Path, default=Path("evaluate_relations.json"))
    args = parser.parse_args(argv)
    originals, _ = choose_collection(argparse.Namespace(corpus=args.corpus, folder=None))
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    edited: Counter[str] = Counter()
    for name, edited_path, original in make_edits(originals, args.cache / "edits"):
        query, match = _side(original), _side(edited_path)
        if args.edit_as_query:
            query, match = match, query
        relation = relation_of(query, match, score_pair(query, match), DEFAULT_SETTINGS.duplicate_threshold)
        kinds[name][relation.kind] += 1
        edited[name] += relation.edited
    rows = {}
    for name in EDIT_NAMES:
        count = sum(kinds[name].values())
        shares = {kind: n / count for kind, n in kinds[name].most_common()}
        rows[name] = {"edited": edited[name] / count, "kinds": shares}
        listed = ", ".join(f"{kind} {share:.2f}" for kind, share in shares.items())
        print(f"{name:<24} edited {rows[name]['edited']:.2f}   {listed}")
    args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
