"""First syncs at growing catalogue sizes: is the time per product flat? PostgreSQL, batch 1000.

python bench/scale.py [--sizes 10000,100000] [--million] [--repeats 3] [--before CHECKOUT]

For each size: a first sync of the synthetic catalogue (bench/catalogue.py) into a fresh
database, and the bare bulk_create floor (bench/floor.py) in chunks of the batch size, the
two interleaved, --repeats times. Prints the median ms per product of the sync (its own run
time, start-up left out), its ratio to the smallest size's, the median ratio sync ÷ floor
(whole processes, pair by pair) and the peak RSS of each. --million adds 1,000,000 products
(about ten minutes a sync on two cores). --before also runs, interleaved, the sync of another
checkout (`git archive OLD | tar -x -C DIR`) on the same databases: a before/after in one run.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("BENCH_PG_PREFIX", "ps_bench_scale")

import catalogue  # noqa: E402
import run as bench  # noqa: E402


def measure(n: int, batch: int, repeats: int, before: Path | None, work: Path) -> dict:
    """Figures of size n: the sync's run seconds and peak RSS, the floor's and sync's whole
    process seconds, per repeat."""
    work.mkdir(parents=True, exist_ok=True)
    files = {"jsonl": work / f"catalogue-{n}.jsonl", "csv": work / f"catalogue-{n}.csv"}
    if not files["jsonl"].exists():
        catalogue.write_jsonl(files["jsonl"], n)
        catalogue.write_csv(files["csv"], n)
    db = bench.Database("postgresql", work)
    db.build_template()
    sync = bench.sync_argv(files["jsonl"], batch)
    floor = [str(bench.BENCH / "floor.py"), str(files["csv"]), "--chunk", str(batch)]
    out: dict[str, list] = {"run": [], "process": [], "rss": [], "floor": [], "floor_rss": []}
    out["before"] = []
    try:
        for _ in range(repeats):
            db.reset()
            seconds, rss, own, _ = bench.run(sync, db.url)
            out["run"].append(own if own is not None else seconds)
            out["process"].append(seconds)
            out["rss"].append(rss)
            if before is not None:
                db.reset()
                seconds, _, own, _ = bench.run([str(before / "manage.py"), *sync[1:]], db.url)
                out["before"].append(own if own is not None else seconds)
            db.reset()
            seconds, rss = bench.run(floor, db.url)[:2]
            out["floor"].append(seconds)
            out["floor_rss"].append(rss)
            print(
                f"  {n:,}: sync {out['run'][-1]:.2f}s ({out['process'][-1]:.2f}s process, "
                f"{out['rss'][-1] / 1024:.0f} MB), floor {seconds:.2f}s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        db.drop()
    return out


def table(figures: dict[int, dict], batch: int) -> str:
    first = min(figures)
    base = statistics.median(figures[first]["run"]) / first
    lines = [
        f"| products | sync run s | ms/product | × at {first:,} | floor s (chunks of {batch}) "
        "| sync ÷ floor (processes) | peak RSS sync / floor MB | before: ms/product |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, f in sorted(figures.items()):
        seconds = statistics.median(f["run"])
        ratio = statistics.median(p / fl for p, fl in zip(f["process"], f["floor"], strict=True))
        rss = statistics.median(f["rss"]) / 1024
        floor_rss = statistics.median(f["floor_rss"]) / 1024
        before = f"{1000 * statistics.median(f['before']) / n:.3f}" if f["before"] else "–"
        lines.append(
            f"| {n:,} | {seconds:.2f} | {1000 * seconds / n:.3f} | {seconds / n / base:.2f} "
            f"| {statistics.median(f['floor']):.2f} | {ratio:.2f} | {rss:.0f} / {floor_rss:.0f} "
            f"| {before} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 products")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=bench.BENCH / "out" / "scale")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.million else [])
    figures = {n: measure(n, args.batch, args.repeats, args.before, args.work) for n in sizes}
    print(table(figures, args.batch), flush=True)


if __name__ == "__main__":
    main()
