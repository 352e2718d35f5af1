"""A feed's author against the reader: three inputs that once took time growing with the
square of their size, each next to a benign feed of the same size, read and validated as a
run reads them (feed_open, then record_parse of every item; no database).

python bench/dos.py [--million] [--sizes 10000,100000] [--cases split,upc,sku] [--dir /tmp]

- split: one mapped row whose categories cell holds N values (a Magento categories cell),
  next to N rows of one value each;
- upc: our CSV, N rows of one upc with a different SKU and category each, next to N rows of
  N upcs;
- sku: a Magento CSV, N/2 rows sharing sku=P each naming a different child and the N/2
  children, next to N/2 products naming one child each and their children.

Sizes 10,000 and 100,000 (values or rows), and 1,000,000 with --million. Prints seconds,
and the ratio to the benign feed.
"""

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

from _django import setup

MAGENTO = (
    "sku,product_type,attribute_set_code,name,price,qty,categories,configurable_variations,"
    "additional_attributes\n"
)
OURS = "upc,title,product_class,categories,partner,partner_sku,price\n"
SPLIT_FIELDS = {
    "upc": "id",
    "title": "name",
    "product_class": {"value": "Thing"},
    "categories": {"path": "cats", "split": ","},
}


def split_feeds(folder: Path, n: int) -> tuple[Path, Path, dict]:
    mapping = folder / "split.json"
    mapping.write_text(json.dumps({"fields": SPLIT_FIELDS}), encoding="utf-8")
    bad, good = folder / f"split-{n}.csv", folder / f"split-benign-{n}.csv"
    cell = ",".join(f"C{i}" for i in range(n))
    bad.write_text(f'id,name,cats\nA,Apple,"{cell}"\n', encoding="utf-8")
    with open(good, "w", encoding="utf-8") as out:
        out.write("id,name,cats\n")
        out.writelines(f"A{i},Apple,C{i}\n" for i in range(n))
    return bad, good, {"mapping": str(mapping)}


def upc_feeds(folder: Path, n: int) -> tuple[Path, Path, dict]:
    bad, good = folder / f"upc-{n}.csv", folder / f"upc-benign-{n}.csv"
    for path, upc in ((bad, lambda i: "P"), (good, lambda i: f"P{i}")):
        with open(path, "w", encoding="utf-8") as out:
            out.write(OURS)
            out.writelines(f"{upc(i)},Pan,Pans,Pans > S{i},Acme,P-{i},1.00\n" for i in range(n))
    return bad, good, {}


def sku_feeds(folder: Path, n: int) -> tuple[Path, Path, dict]:
    bad, good = folder / f"sku-{n}.csv", folder / f"sku-benign-{n}.csv"
    half = n // 2
    children = [f"C{i},simple,Shirts,Shirt {i},9.50,3,,,size=S{i}\n" for i in range(half)]
    for path, parent in ((bad, lambda i: "P"), (good, lambda i: f"P{i}")):
        with open(path, "w", encoding="utf-8") as out:
            out.write(MAGENTO)
            out.writelines(
                f"{parent(i)},configurable,Shirts,Shirt,,,,sku=C{i},\n" for i in range(half)
            )
            out.writelines(children)
    return bad, good, {"preset": "magento"}


def read_seconds(path: Path, options: dict) -> tuple[float, int]:
    from productsync.exceptions import RecordError
    from productsync.feeds import FeedOptions, feed_open
    from productsync.records import record_parse

    started, items = time.perf_counter(), 0
    with feed_open(str(path), count=False, options=FeedOptions(**options)) as feed:
        for item in feed:
            items += 1
            with contextlib.suppress(RecordError):
                record_parse(item.payload)
    return time.perf_counter() - started, items


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--million", action="store_true", help="also 1,000,000")
    parser.add_argument("--dir", default=None)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated")
    parser.add_argument("--cases", default="split,upc,sku", help="comma-separated")
    args = parser.parse_args()
    setup()
    sizes = [int(n) for n in args.sizes.split(",")] + ([1_000_000] if args.million else [])
    cases = {"split": split_feeds, "upc": upc_feeds, "sku": sku_feeds}
    print(f"{'case':6} {'size':>9} {'seconds':>9} {'benign':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for name in args.cases.split(","):
            feeds = cases[name]
            for n in sizes:
                bad, good, options = feeds(Path(folder), n)
                seconds, _ = read_seconds(bad, options)
                benign, _ = read_seconds(good, options)
                print(f"{name:6} {n:>9,} {seconds:>9.2f} {benign:>9.2f} {seconds / benign:>6.2f}")
                bad.unlink()
                good.unlink()


if __name__ == "__main__":
    main()
