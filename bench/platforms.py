"""A platform export against the same catalogue as our own JSON feed.

python bench/platforms.py [--source ../shared/data/magento/configurable_products.csv]
                          [--preset magento] [--repeats 3] [--databases sqlite,postgresql]

The JSON feed is written from the preset's own reading of the export (so both runs write the
same products, children, stock records, attributes and categories), then each is synced into
a fresh database with --batch-size 15, the runs interleaved, and the medians compared: the
run's own time (as sync_products prints it), the whole process, and its CPU time (the
steadiest figure on a busy machine).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from run import MANAGE, ROOT, Database, run

DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "magento" / "configurable_products.csv"


def json_feed(source: Path, preset: str, out: Path) -> int:
    """Our JSON feed of what the preset reads from the export; returns its item count."""
    sys.path.insert(0, str(ROOT))
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    django.setup()
    from productsync.feeds import FeedOptions, feed_open

    items = []
    with feed_open(str(source), count=False, options=FeedOptions(preset=preset)) as feed:
        items = [item.payload for item in feed]
    out.write_text(json.dumps(items), encoding="utf-8")
    return len(items)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--preset", default="magento")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--databases", default="sqlite")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="productsync-bench-"))
    feed = work / "catalogue.json"
    count = json_feed(args.source, args.preset, feed)
    argv = {
        "export": [MANAGE, "sync_products", "--no-progress", "--source", str(args.source)]
        + ["--preset", args.preset, "--batch-size", "15"],
        "json": [MANAGE, "sync_products", "--no-progress", "--source", str(feed)]
        + ["--batch-size", "15"],
    }
    print(f"{args.source.name}: {count} products; JSON feed {feed.stat().st_size:,} bytes")
    for kind in args.databases.split(","):
        db = Database(kind, work / kind)
        db.build_template()
        figures = {name: [] for name in argv}
        for _ in range(args.repeats):
            for name, command in argv.items():
                db.reset()
                wall, rss, own, cpu = run(command, db.url)
                figures[name].append((own, wall, rss, cpu))
        db.drop()
        print(f"\n{kind}: median of {args.repeats}")
        print("| feed | run (s) | process (s) | process CPU (s) | peak RSS (MB) |")
        print("|---|---:|---:|---:|---:|")
        for name, runs in figures.items():
            own, wall, rss, cpu = (statistics.median(r[i] for r in runs) for i in range(4))
            print(f"| {name} | {own:.2f} | {wall:.2f} | {cpu:.2f} | {rss / 1024:.0f} |")
        for what, i in (("run time", 0), ("process CPU time", 3)):
            pairs = zip(figures["export"], figures["json"], strict=True)
            ratios = [e[i] / j[i] for e, j in pairs]
            print(
                f"export ÷ JSON ({what}, per repeat): {', '.join(f'{r:.2f}' for r in ratios)}; "
                f"median {statistics.median(ratios):.2f}"
            )


if __name__ == "__main__":
    main()
