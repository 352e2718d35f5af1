"""Excel workbooks at flat memory: peak RSS reading generated workbooks of our columns.

python bench/xlsx.py [--rows 10000 100000] [--dir /tmp]

Writes a workbook of each number of rows (openpyxl's write-only mode; prices as numbers with
two shown decimals, stock as whole numbers), then reads it through feed_open in a process of
its own; prints items read, wall time and that process's peak RSS.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._django import child_measure  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
HEADER = ["upc", "title", "product_class", "description", "categories", "partner"]
HEADER += ["partner_sku", "price", "currency", "num_in_stock"]


def write_rows(path: Path, count: int) -> None:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Products")
    sheet.append(HEADER)
    for n in range(count):
        price = WriteOnlyCell(sheet, value=n % 100 + 0.99)
        price.number_format = "0.00"
        sheet.append(
            [f"UPC-{n}", f"Product {n}", "Book", f"Description of product {n}."]
            + [f"Cat {n % 10} > Sub {n % 3}", "Bench", f"SKU-{n}", price, "EUR", n % 50]
        )
    book.save(path)


def child(path: str) -> None:
    sys.path.insert(0, str(ROOT))
    from bench._django import setup

    setup()
    from productsync.feeds import feed_open

    with feed_open(path, count=False) as feed:
        print(sum(1 for _ in feed))


def measure(path: Path) -> dict:
    out, cost = child_measure(__file__, path)
    return {
        "file_mb": round(path.stat().st_size / MIB, 1),
        "items": int(out.strip() or 0),
        **cost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dir", default=None)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for count in args.rows:
            path = Path(folder) / f"rows-{count}.xlsx"
            write_rows(path, count)
            print(f"{count} rows:", measure(path))


if __name__ == "__main__":
    main()
