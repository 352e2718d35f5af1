"""A stock file (price and quantity changed on every record) against its floor.

python bench/stock.py [--records 100000] [--repeats 3] [--databases postgresql]

The catalogue of --records products is synced once; each measurement starts from a copy of
that database and runs either `sync_products --partial --allow-mass-change` (every price
changes: a deliberate mass change) on the stock file or the floor (bench/stock_floor.py: a
bare COPY into a temporary table and one UPDATE ... FROM). Both are timed as whole
processes and as runs (their own time, start-up left out); medians.
"""

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

os.environ.setdefault("BENCH_PG_PREFIX", "ps_bench_stock")  # beside bench/run.py's

import catalogue  # noqa: E402
from run import BENCH, ROOT, Database, run, sync_argv  # noqa: E402


def prepared(kind: str, work: Path, n: int) -> tuple[Database, dict]:
    """A database template holding the synced catalogue of n products."""
    db = Database(kind, work)
    db.build_template()
    files = catalogue.write_all(work / "feeds", n)
    db.reset()
    run(sync_argv(files["json"], 1000), db.url)
    if kind == "postgresql":  # as autovacuum has done by the time a shop's stock file comes
        with db.psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute("ANALYZE")
    if kind == "sqlite":
        shutil.copy(db.path, db.template)
    else:
        from run import PG_PREFIX

        db._pg(
            f"DROP DATABASE IF EXISTS {PG_PREFIX}_template WITH (FORCE)",
            f"CREATE DATABASE {PG_PREFIX}_template TEMPLATE {PG_PREFIX}_run",
        )
    return db, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--databases", default="postgresql")
    parser.add_argument("--batch-sizes", default="1000,5000")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    for kind in args.databases.split(","):
        db, files = prepared(kind, args.work / kind, args.records)
        todo = {
            "floor: COPY + UPDATE ... FROM": [str(BENCH / "stock_floor.py"), str(files["stock"])]
        }
        for size in args.batch_sizes.split(","):
            todo[f"sync_products --partial, --batch-size {size}"] = [
                *sync_argv(files["stock"], int(size)),
                "--partial",
                "--allow-mass-change",  # every price changes: the guard would stop it
            ]
        figures: dict[str, list] = {name: [] for name in todo}
        try:
            for repeat in range(args.repeats):
                for name, argv in todo.items():
                    db.reset()
                    figures[name].append(run(argv, db.url))
                    wall, _, own = figures[name][-1][:3]
                    print(
                        f"  [{kind} {repeat + 1}/{args.repeats}] {name}: {wall:.2f}s, "
                        f"run {own:.2f}s",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            db.drop()
        floor = figures[next(iter(todo))]
        print(f"{kind}, stock file of {args.records:,} records, median of {args.repeats}\n")
        print(
            "| what | records/s (run) | run (s) | process (s) | run ÷ floor's | process ÷ floor's |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name, runs in figures.items():
            own = statistics.median(r[2] for r in runs)
            wall = statistics.median(r[0] for r in runs)
            by_run = statistics.median(r[2] / f[2] for r, f in zip(runs, floor, strict=True))
            by_wall = statistics.median(r[0] / f[0] for r, f in zip(runs, floor, strict=True))
            print(
                f"| {name} | {args.records / own:,.0f} | {own:.2f} | {wall:.2f} "
                f"| {by_run:.2f} | {by_wall:.2f} |"
            )
        print()


if __name__ == "__main__":
    main()
