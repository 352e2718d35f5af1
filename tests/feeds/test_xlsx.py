"""Excel workbooks read as their CSV: the shared platform exports saved as workbooks (numbers
as numbers, as Excel makes them) sync to the catalogue of their CSVs; numbers without float
noise; formulas as their cached values; a sheet by name."""

import contextlib
import csv
import datetime as dt
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.exceptions import SourceError
from productsync.feeds import FeedOptions, feed_open
from productsync.feeds.xlsxfeed import cell_text, number_text
from productsync.models import SyncRun
from tests.catalogue import (
    HEADER,
    attribute_snapshot,
    catalogue_clear,
    catalogue_snapshot,
    demo_csv_rows,
)
from tests.conftest import shared_data

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,12})\.([0-9]{1,6})")


@pytest.fixture(autouse=True)
def no_image_fetching(settings):
    settings.PRODUCTSYNC = {**getattr(settings, "PRODUCTSYNC", {}), "FETCH_IMAGES": False}


def excel_value(text: str) -> tuple:
    """A CSV cell as Excel opens it: whole and decimal numbers become numbers (shown with
    their decimals), TRUE/FALSE booleans, the rest text."""
    if INTEGER.fullmatch(text):
        return int(text), "General"
    decimal = DECIMAL.fullmatch(text)
    if decimal:
        return float(text), "0." + "0" * len(decimal.group(1))
    if text in ("TRUE", "FALSE"):
        return text == "TRUE", "General"
    return text, "General"


def workbook_of(rows: list[list[str]], path: Path, sheet: str = "Products") -> Path:
    book = openpyxl.Workbook()
    book.active.title = sheet
    for r, row in enumerate(rows, start=1):
        for c, text in enumerate(row, start=1):
            if text == "":
                continue
            value, number_format = excel_value(text)
            cell = book.active.cell(row=r, column=c, value=value)
            if isinstance(value, str) and value.startswith("="):
                cell.data_type = "s"  # a cell of text, not a formula
            cell.number_format = number_format
    book.save(path)
    return path


def csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def sync(path, *extra: str) -> SyncRun:
    with contextlib.suppress(SystemExit):
        call_command("sync_products", "--source", str(path), "--no-progress", *extra)
    return SyncRun.objects.latest("pk")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "preset"),
    [
        ("shopify/product_template.csv", "shopify"),
        ("woocommerce/sample_products.csv", "woocommerce"),
        ("magento/configurable_products.csv", "magento"),
    ],
)
def test_a_platform_export_saved_as_a_workbook_makes_the_catalogue_of_its_csv(
    tmp_path, path, preset
):
    source = shared_data(path)
    book = workbook_of(csv_rows(source), tmp_path / f"{preset}.xlsx")
    from_csv = sync(source, "--preset", preset)
    assert from_csv.created > 0 and from_csv.status in ("succeeded", "completed_with_failures")
    # Snapshots by key: the products have no UPC (a platform without barcodes).
    expected = (catalogue_snapshot(), attribute_snapshot())
    assert len(expected[0]["products"]) == Product.objects.count() > 1
    catalogue_clear()

    from_book = sync(book, "--preset", preset)

    assert (catalogue_snapshot(), attribute_snapshot()) == expected
    assert (from_book.status, from_book.items, from_book.created, from_book.failed) == (
        from_csv.status,
        from_csv.items,
        from_csv.created,
        from_csv.failed,
    )


@pytest.mark.django_db
def test_a_workbook_is_told_by_its_header_and_a_resync_is_unchanged(tmp_path):
    book = workbook_of(csv_rows(shared_data("shopify/product_template.csv")), tmp_path / "s.xlsx")

    first = sync(book)
    again = sync(book, "--full")

    assert "mapping: the shopify preset, detected from the sheet's header" in first.notes
    assert (first.status, first.created) == ("succeeded", 3)
    assert (again.items, again.unchanged, again.updated) == (3, 3, 0)


@pytest.mark.django_db
def test_our_header_in_a_named_sheet_lands_like_our_csv(tmp_path):
    rows = demo_csv_rows()
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active["A1"] = "read the other sheet"
    sheet = book.create_sheet("Catalogue")
    for row in rows:
        sheet.append([excel_value(text)[0] if text else None for text in row])
    book.save(tmp_path / "two-sheets.xlsx")
    with open(tmp_path / "demo.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    sync(tmp_path / "demo.csv")
    expected = catalogue_snapshot()
    catalogue_clear()

    run = sync(tmp_path / "two-sheets.xlsx", "--sheet", "Catalogue")

    assert run.status == "succeeded"
    assert catalogue_snapshot() == expected
    assert rows[0] == HEADER


def test_an_unknown_sheet_is_named_with_the_sheets_there_are(tmp_path):
    path = workbook_of([["upc", "title", "product_class"], ["A", "B", "C"]], tmp_path / "a.xlsx")

    with pytest.raises(SourceError, match="no sheet 'Stock' \\(it has Products\\)"):
        feed_open(str(path), options=FeedOptions(sheet="Stock"))


def test_numbers_read_without_float_noise():
    assert number_text(19.99) == "19.99"
    assert number_text(0.1 + 0.2) == "0.30000000000000004"  # what the cell holds
    assert number_text(5.0) == "5"
    assert number_text(7) == "7"
    assert number_text(29.0, "0.00") == "29.00"
    assert number_text(1234.5, "#,##0.00") == "1234.50"
    assert number_text(1e-05) == "0.00001"
    assert cell_text(True) == "TRUE"
    assert cell_text(dt.datetime(2026, 12, 6)) == "2026-12-06"
    assert cell_text(dt.datetime(2026, 12, 6, 4, 30)) == "2026-12-06T04:30:00"
    assert Decimal(number_text(19.99)) == Decimal("19.99")


def test_a_formula_is_read_as_its_cached_value_never_evaluated(tmp_path):
    path = workbook_of(
        [
            ["upc", "title", "product_class", "partner", "partner_sku", "price"],
            ["A", "Formula product", "Thing", "P", "A", "1"],
        ],
        tmp_path / "formula.xlsx",
    )
    # Excel stores a formula with the value it last computed: 19.99, not what =1+1 gives.
    patched = tmp_path / "cached.xlsx"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(patched, "w") as zout:
        for entry in zin.infolist():
            data = zin.read(entry)
            if entry.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(
                    rb'<c r="F2"[^>]*>.*?</c>', b'<c r="F2"><f>1+1</f><v>19.99</v></c>', data
                )
            zout.writestr(entry, data)

    with feed_open(str(patched), count=False) as feed:
        (item,) = list(feed)

    assert item.payload["stockrecords"][0]["price"] == "19.99"


@pytest.mark.django_db
def test_a_workbook_over_http_is_told_by_its_content_type(http_server, tmp_path):
    book = workbook_of(csv_rows(shared_data("shopify/product_template.csv")), tmp_path / "s.xlsx")
    server = http_server()
    server.files["/export"] = (
        book.read_bytes(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )

    run = sync(server.url + "/export", "--preset", "shopify")

    assert (run.status, run.created, run.failed) == ("succeeded", 3, 0)


@pytest.mark.django_db
def test_a_stock_workbook_updates_its_partners_stock(tmp_path):
    with open(tmp_path / "demo.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(demo_csv_rows())
    sync(tmp_path / "demo.csv")
    book = openpyxl.Workbook()
    book.active.append(["sku", "price", "stock"])
    book.active.append(["ACME-0001", 19.99, 12])
    book.active.append(["ACME-0002", None, 0])
    book.save(tmp_path / "stock.xlsx")

    run = sync(tmp_path / "stock.xlsx", "--partner", "Acme Books")

    assert (run.partial, run.status, run.updated, run.failed) == (True, "succeeded", 2, 0)
    first = StockRecord.objects.get(partner_sku="ACME-0001")
    second = StockRecord.objects.get(partner_sku="ACME-0002")
    assert (first.price, first.num_in_stock) == (Decimal("19.99"), 12)
    assert (second.price, second.num_in_stock) == (Decimal("45.00"), 0)  # empty: unchanged
