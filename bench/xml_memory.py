"""XML feeds at flat memory: peak RSS reading generated Google Merchant Center feeds.

python bench/xml_memory.py [--items 10000 100000] [--text-mb 64] [--dir /tmp]

Writes an RSS feed of each number of items (variants grouped by item_group_id, so the
on-disk grouping runs too) and one feed whose middle item holds a single --text-mb text node
(1024 for the hostile 1 GB case; it is refused at the parser's bound). Each is read through
feed_open with the google preset in a process of its own; prints items read, the error if
any, wall time and that process's peak RSS. (Not named bench/xml.py: that would hide the
standard library's xml package from every bench script.)
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._django import child_measure  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
    'xmlns:g="http://base.google.com/ns/1.0"><channel><title>Bench Store</title>\n'
)
END = "</channel></rss>\n"


def item(n: int) -> str:
    group = f"<g:item_group_id>G{n // 4}</g:item_group_id>" if n % 2 else ""
    return (
        f"<item><g:id>SKU-{n}</g:id>{group}<g:title>Product {n}</g:title>"
        f"<g:description>Description of product {n}, long enough to be a real one.</g:description>"
        f"<g:link>http://localhost/p/{n}</g:link><g:image_link>http://localhost/i/{n}.jpg"
        f"</g:image_link><g:price>{n % 100}.99 USD</g:price><g:availability>in_stock"
        f"</g:availability><g:brand>Brand {n % 7}</g:brand><g:color>C{n % 5}</g:color>"
        f"<g:product_type>Cat {n % 10} &gt; Sub {n % 3}</g:product_type></item>\n"
    )


def write_items(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(HEAD)
        for n in range(count):
            out.write(item(n))
        out.write(END)


def write_text_node(path: Path, text_mb: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(HEAD + item(0) + "<item><g:id>HUGE</g:id><g:description>")
        for _ in range(text_mb):
            out.write("x" * MIB)
        out.write("</g:description></item>" + item(1) + END)


def child(path: str) -> None:
    sys.path.insert(0, str(ROOT))
    from bench._django import setup

    setup()
    from productsync.feeds import FeedOptions, feed_open

    count, error = 0, ""
    try:
        with feed_open(path, count=False, options=FeedOptions(preset="google")) as feed:
            for _ in feed:
                count += 1
    except Exception as exc:  # noqa: BLE001  (the bench reports any ending)
        error = f"{type(exc).__name__}: {str(exc)[:120]}"
    print(count, error, sep="\t")


def measure(path: Path) -> dict:
    out, cost = child_measure(__file__, path)
    count, _, error = out.strip().partition("\t")
    return {
        "file_mb": round(path.stat().st_size / MIB, 1),
        "items": int(count or 0),
        "error": error,
        **cost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--text-mb", type=int, default=64)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for count in args.items:
            path = Path(folder) / f"items-{count}.xml"
            write_items(path, count)
            print(f"{count} items:", measure(path))
            path.unlink()
        path = Path(folder) / "text-node.xml"
        write_text_node(path, args.text_mb)
        print(f"one {args.text_mb} MB text node:", measure(path))


if __name__ == "__main__":
    main()
