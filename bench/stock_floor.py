"""The floor of a stock file: a bare COPY into a temporary table and one UPDATE ... FROM.

python bench/stock_floor.py STOCK.csv   (partner,sku,price,num_in_stock with a header row)

No validation, no history, no comparison: what a hand-written loader does. On PostgreSQL
it sets the sync's mark, so change capture's triggers return without counting an edit per
row (twice the floor's time otherwise; --as-edit measures that). It prints its own time in
the form sync_products does, so bench/stock.py compares both as runs.
"""

import argparse
import csv
import time

from _django import setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument(
        "--as-edit",
        action="store_true",
        help="without the sync's mark: change capture counts every row updated as an edit",
    )
    args = parser.parse_args()
    setup()

    from django.db import connection, transaction
    from oscar.core.loading import get_model

    stock = get_model("partner", "StockRecord")._meta.db_table
    partner = get_model("partner", "Partner")._meta.db_table
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not args.as_edit:
            # The mark the sync sets on its own writes, so that change capture's triggers do
            # not count them as edits (productsync/writer/capture.py); harmless without it.
            cursor.execute("SELECT set_config('productsync.writing', 'on', true)")
        cursor.execute(
            "CREATE TEMPORARY TABLE stock_in (partner varchar(128), sku varchar(128), "
            "price numeric(12, 2), num integer)"
        )
        if connection.vendor == "postgresql":
            with (
                open(args.csv, "rb") as f,
                cursor.cursor.copy("COPY stock_in FROM STDIN (FORMAT csv, HEADER true)") as copy,
            ):
                while chunk := f.read(1 << 16):
                    copy.write(chunk)
        else:  # SQLite has no COPY: one executemany, its fastest bulk insert
            with open(args.csv, encoding="utf-8", newline="") as f:
                rows = csv.reader(f)
                next(rows)
                cursor.executemany("INSERT INTO stock_in VALUES (%s, %s, %s, %s)", list(rows))
        cursor.execute(
            f"UPDATE {stock} SET price = s.price, num_in_stock = s.num FROM stock_in s "
            f"JOIN {partner} p ON p.name = s.partner WHERE {stock}.partner_id = p.id "
            f"AND {stock}.partner_sku = s.sku"
        )
        updated = cursor.rowcount
    print(f"Run 0 floor: {updated} records updated; {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    main()
