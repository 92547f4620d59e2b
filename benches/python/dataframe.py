"""100,000 customers to a pandas and a polars DataFrame: through the Arrow C stream (the store
scanned straight into Arrow columns, no record per row) vs building Python objects one by one,
in the same run.

    python benches/python/dataframe.py [N]

Prints the best of 3 runs for each path; "scan" is `list_all()` alone (SQLite → Arrow columns).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import guanxi

FIELDS = ("id", "code", "name", "kind", "industry", "size", "source", "status", "level", "province", "city",
          "district", "address", "owner", "department", "tags", "created_by", "created_at", "updated_by",
          "updated_at", "version", "deleted_at")
PROVINCES = [("山东", "聊城市"), ("广东", "深圳市"), ("浙江", "杭州市"), ("北京", "北京市")]


def load(crm: guanxi.Crm, n: int) -> None:
    chunk = 10_000
    for start in range(0, n, chunk):
        crm.customers.create_many(
            {
                "name": f"客户{i}科技有限公司",
                "source": "展会",
                "province": PROVINCES[i % 4][0],
                "city": PROVINCES[i % 4][1],
                "tags": [f"标签{i % 20:02}", f"标签{(i + 7) % 20:02}"],
                "status": ("potential", "customer", "lost")[i % 3],
            }
            for i in range(start, min(start + chunk, n))
        )


def best(fn, repeat: int = 3):  # type: ignore[no-untyped-def]
    """The best time of `repeat` runs, and the last run's result."""
    times, result = [], None
    for _ in range(repeat):
        result = None  # the previous run's frame is freed before the next is timed
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp, guanxi.Crm.open(Path(tmp) / "bench.db", user="bench") as crm:
        load(crm, n)
        scan, _ = best(lambda: crm.customers.list_all())
        pandas, pandas_frame = best(lambda: crm.customers.list_all().to_pandas())
        polars, polars_frame = best(lambda: crm.customers.list_all().to_polars())

        def objects() -> pd.DataFrame:
            return pd.DataFrame([{f: getattr(c, f) for f in FIELDS} for c in crm.customers.list_all()])

        baseline, objects_frame = best(objects)
        assert len(pandas_frame) == len(objects_frame) == len(polars_frame) == n
    print(f"{n} customers → DataFrame (best of 3)")
    print(f"  scan (SQLite → Arrow columns):     {scan * 1000:8.1f} ms")
    print(f"  pandas via Arrow C stream:         {pandas * 1000:8.1f} ms  ({baseline / pandas:.1f}x faster than objects)")
    print(f"  polars via Arrow C stream:         {polars * 1000:8.1f} ms  ({baseline / polars:.1f}x faster than objects)")
    print(f"  Python objects one by one:         {baseline * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
