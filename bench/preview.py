"""The cost of a preview (a dry run recording every item's outcome and changed fields) against
a dry run without diffs, on a synced catalogue and a feed that changes part of it.

python bench/preview.py [--products 10000] [--repeats 3] [--batch-size 15] [--database URL]

Each measurement is a whole `sync_products` process on the same database (SQLite in a
temporary folder unless --database names a PostgreSQL one), the two kinds interleaved; the
figures are the runs' own durations (started to finished, Django start-up excluded), medians
of the repeats.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import catalogue

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")


def changed(i: int) -> dict:
    """Item i of the second feed: every 10th with a new price, every 100th invalid."""
    item = catalogue.product(i)
    if i % 10 == 0:
        item["stockrecords"][0]["price"] = "1.00"
    if i % 100 == 5:
        del item["title"]
    return item


def manage(env: dict, *args: str) -> dict:
    """Run manage.py sync_products ... --json; return its summary."""
    done = subprocess.run(
        [sys.executable, MANAGE, *args, "--no-progress", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=15)
    parser.add_argument("--database", help="a postgres:// URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": args.database or f"sqlite:///{tmp}/bench.sqlite3"}
        subprocess.run([sys.executable, MANAGE, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
        first, second = Path(tmp) / "first.jsonl", Path(tmp) / "second.jsonl"
        catalogue.write_jsonl(first, args.products)
        with open(second, "w", encoding="utf-8") as out:
            for i in range(args.products):
                out.write(json.dumps(changed(i)) + "\n")
        size = ["--batch-size", str(args.batch_size)]
        manage(env, "sync_products", "--source", str(first), *size)
        figures: dict[str, list[float]] = {"dry run": [], "preview (--diff)": []}
        for _ in range(args.repeats):
            for name, extra in (("dry run", []), ("preview (--diff)", ["--diff"])):
                summary = manage(
                    env, "sync_products", "--source", str(second), "--dry-run", *size, *extra
                )
                figures[name].append(summary["duration_s"])
        base = statistics.median(figures["dry run"])
        print(f"{args.products} items, batches of {args.batch_size}, {args.repeats} repeats")
        for name, runs in figures.items():
            median = statistics.median(runs)
            print(f"{name:18} {median:8.2f} s  ({median / base:.2f}x)  runs: {runs}")


if __name__ == "__main__":
    main()
