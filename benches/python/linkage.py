"""The baseline of `benches/linkage.rs`: the Python `recordlinkage` library on exactly the
records guanxi scans, in the same run: sorted-neighbourhood blocking and the unsupervised ECM
classifier, as its documentation does for FEBRL's data sets.

    python benches/python/linkage.py dedup FILE.csv
    python benches/python/linkage.py link A.csv B.csv

Prints one JSON object: precision, recall and F1 over record pairs, the share of true pairs the
blocking compares (its recall ceiling), the pairs compared and the wall time in seconds.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections import defaultdict

import pandas as pd
import recordlinkage

FIELDS = ["given_name", "surname", "street_number", "address_1", "address_2", "locality", "postcode", "state",
          "date_of_birth", "id_number"]


def read(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("rec_id")
    frame[FIELDS] = frame[FIELDS].replace("", None)
    return frame


def true_pairs(*frames: pd.DataFrame) -> set[tuple[str, str]]:
    """Pairs of records with one label: within one file, or across two."""
    if len(frames) == 1:
        by_label: dict[str, list[str]] = defaultdict(list)
        for rec, label in frames[0]["label"].items():
            by_label[label].append(rec)
        return {tuple(sorted(p)) for members in by_label.values() for p in itertools.combinations(members, 2)}
    a, b = frames
    in_b = defaultdict(list)
    for rec, label in b["label"].items():
        in_b[label].append(rec)
    return {(ra, rb) for ra, label in a["label"].items() for rb in in_b.get(label, [])}


def normalise(pairs: pd.MultiIndex, dedup: bool) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) if dedup else tuple(p) for p in pairs}


def main() -> None:
    mode, paths = sys.argv[1], sys.argv[2:]
    frames = [read(p) for p in paths]
    truth = true_pairs(*frames)
    start = time.perf_counter()
    # Sorted neighbourhood on the surname (window 9), and again on the date of birth, as the
    # library's own examples block FEBRL data.
    indexer = recordlinkage.Index()
    indexer.sortedneighbourhood("surname", window=9)
    indexer.sortedneighbourhood("date_of_birth", window=9)
    candidates = indexer.index(*frames)
    compare = recordlinkage.Compare()
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given_name")
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    compare.exact("street_number", "street_number", label="street_number")
    compare.string("address_1", "address_1", method="qgram", threshold=0.85, label="address_1")
    compare.exact("locality", "locality", label="locality")
    compare.exact("postcode", "postcode", label="postcode")
    compare.exact("state", "state", label="state")
    compare.exact("id_number", "id_number", label="id_number")
    features = compare.compute(candidates, *frames)
    matches = recordlinkage.ECMClassifier(binarize=0.5).fit_predict(features)
    seconds = time.perf_counter() - start
    found = normalise(matches, mode == "dedup")
    compared = normalise(candidates, mode == "dedup")
    correct = len(found & truth)
    precision = correct / len(found) if found else 1.0
    recall = correct / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(json.dumps({
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ceiling": len(compared & truth) / len(truth) if truth else 1.0,
        "compared": len(candidates),
        "seconds": seconds,
    }))


if __name__ == "__main__":
    main()
