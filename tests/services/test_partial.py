"""Partial feeds: stock files and items that carry only what they change."""

import contextlib
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.models import SyncFailure, SyncRun
from productsync.services import sync_run_execute
from tests.conftest import product

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

pytestmark = pytest.mark.django_db

# Stock and price columns the stock file may change; every other column must stay.
STOCK_OWNED = {"price", "num_in_stock", "date_updated"}


def catalogue(write_feed, hide_missing=False) -> str:
    """Four products of one partner, and one of a second partner with the same SKU text."""
    items = [product(f"P{i}") for i in range(1, 5)]
    items.append(
        product(
            "Q1",
            stockrecords=[
                {"partner": "Globex", "partner_sku": "SKU-P1", "price": "3.00", "num_in_stock": 1}
            ],
        )
    )
    path = write_feed(items, name="full.json")
    run = sync_run_execute(path, hide_missing=hide_missing)
    assert (run.status, run.created) == ("succeeded", 5)
    return path


def rows(model) -> dict:
    return {row["id"]: row for row in model.objects.values()}


def stock_file(tmp_path, text: str, name="stock.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def sync(*args: str) -> tuple[SyncRun, str]:
    out = StringIO()
    with contextlib.suppress(SystemExit):  # exit status 1: a run with failed items
        call_command("sync_products", "--no-progress", *args, stdout=out)
    return SyncRun.objects.order_by("-pk").first(), out.getvalue()


def test_a_stock_file_updates_price_and_stock_only(write_feed, tmp_path):
    catalogue(write_feed)
    products, stock = rows(Product), rows(StockRecord)
    path = stock_file(
        tmp_path, "sku,price,num_in_stock\nSKU-P1,12.50,7\nSKU-P2,10.00,5\nSKU-P3,9.99,0\n"
    )

    run, out = sync("--source", path, "--partner", "Acme Books")

    assert (run.status, run.partial, run.items) == ("succeeded", True, 3)
    assert (run.created, run.updated, run.unchanged, run.failed) == (0, 2, 1, 0)
    assert "0 created, 2 updated, 1 unchanged, 0 repaired" in out
    assert rows(Product) == products  # not a column of any product moved, date_updated included
    after = rows(StockRecord)
    changed = {}
    for pk, row in stock.items():
        moved = {key for key in row if after[pk][key] != row[key]}
        assert moved <= STOCK_OWNED, (row["partner_sku"], moved)
        if moved:
            changed[row["partner_sku"]] = (after[pk]["price"], after[pk]["num_in_stock"])
    assert changed == {"SKU-P1": (Decimal("12.50"), 7), "SKU-P3": (Decimal("9.99"), 0)}
    # Globex's SKU-P1 is another partner's record: untouched.
    assert StockRecord.objects.get(partner__name="Globex").price == Decimal("3.00")


def test_an_unknown_sku_fails_alone(write_feed, tmp_path):
    catalogue(write_feed)
    count = Product.objects.count()
    path = stock_file(tmp_path, "sku,price,num_in_stock\nSKU-P1,11.00,3\nNOPE,1.00,1\nSKU-P2,,9\n")

    run, out = sync("--source", path, "--partner", "Acme Books")

    assert (run.status, run.updated, run.failed) == ("completed_with_failures", 2, 1)
    failure = SyncFailure.objects.get(run=run)
    assert failure.position == 1
    assert failure.message == (
        "partner_sku: no stock record of partner 'Acme Books' with partner_sku 'NOPE'"
    )
    assert json.loads(failure.raw_payload) == {
        "partner": "Acme Books",
        "partner_sku": "NOPE",
        "price": "1.00",
        "num_in_stock": "1",
    }
    assert Product.objects.count() == count  # never a half-made product
    p1 = StockRecord.objects.get(partner_sku="SKU-P1", partner__name="Acme Books")
    assert (p1.price, p1.num_in_stock) == (Decimal("11.00"), 3)
    # An empty cell is left as it is: SKU-P2 keeps its price, takes the new quantity.
    p2 = StockRecord.objects.get(partner_sku="SKU-P2")
    assert (p2.price, p2.num_in_stock) == (Decimal("10.00"), 9)


def test_an_unknown_partner_fails_its_items_and_creates_nothing(write_feed, tmp_path):
    catalogue(write_feed)
    path = stock_file(tmp_path, "sku,price\nSKU-P1,11.00\n")

    run, _ = sync("--source", path, "--partner", "Nobody Ltd")

    assert (run.status, run.failed, run.updated) == ("completed_with_failures", 1, 0)
    assert "no stock record of partner 'Nobody Ltd'" in SyncFailure.objects.get(run=run).message
    assert not StockRecord.objects.filter(partner__name="Nobody Ltd").exists()


def test_items_by_upc_change_only_the_fields_they_give(write_feed):
    catalogue(write_feed)
    before = {p.upc: p for p in Product.objects.all()}
    path = write_feed(
        [
            {"upc": "P1", "title": "A new title"},
            {
                "upc": "P2",
                "stockrecords": [
                    {"partner": "Acme Books", "partner_sku": "SKU-P2", "num_in_stock": 0}
                ],
            },
            {"upc": "P3", "is_public": False, "description": "<p>Out of print.</p>"},
            {"upc": "NEW", "title": "Not in the catalogue"},
            {"upc": "P4", "stockrecords": [{"partner": "Acme Books", "partner_sku": "SKU-P1"}]},
        ],
        name="partial.jsonl",
    )

    run, _ = sync("--source", path, "--partial")

    assert (run.partial, run.updated, run.unchanged, run.failed) == (True, 3, 0, 2)
    messages = dict(SyncFailure.objects.filter(run=run).values_list("position", "message"))
    assert messages == {
        3: "upc: no product with upc 'NEW'",
        4: "stockrecords[0].partner_sku: the stock record 'SKU-P1' of 'Acme Books' belongs "
        "to another product than 'P4'",
    }
    p1, p2, p3 = (Product.objects.get(upc=u) for u in ("P1", "P2", "P3"))
    assert (p1.title, p1.description, p1.is_public) == ("A new title", "<p>A book.</p>", True)
    assert p1.slug == before["P1"].slug  # the slug stays, as when a title is edited in Oscar
    assert p2.title == before["P2"].title and p2.date_updated == before["P2"].date_updated
    sr = p2.stockrecords.get()
    assert (sr.price, sr.num_in_stock) == (Decimal("10.00"), 0)
    assert (p3.is_public, p3.description, p3.title) == (False, "<p>Out of print.</p>", "Product P3")
    assert not Product.objects.filter(upc="NEW").exists()


def test_a_partial_item_cannot_change_what_only_a_full_item_gives(write_feed):
    catalogue(write_feed)
    path = write_feed(
        [
            {"upc": "P1", "product_class": "Toy"},
            {"partner_sku": "SKU-P1", "partner": "Acme Books", "title": "No"},
            {"price": "1.00"},
        ],
        name="partial.json",
    )

    run = sync_run_execute(path, partial=True)

    messages = list(SyncFailure.objects.filter(run=run).values_list("field", "message"))
    assert [field for field, _ in messages] == ["product_class", "title", "upc"]
    assert "product_class is not one of them" in messages[0][1]
    assert "give the product's upc to change its title" in messages[1][1]
    assert "keyed by upc, or by partner and partner_sku" in messages[2][1]
    assert Product.objects.get(upc="P1").product_class.name == "Book"


def test_a_full_feed_still_requires_every_field(write_feed):
    catalogue(write_feed)

    run = sync_run_execute(write_feed([{"upc": "P1", "title": "Only a title"}]))

    assert (run.partial, run.failed) == (False, 1)
    assert SyncFailure.objects.get(run=run).message == "product_class: Field required"


def test_a_partial_run_hides_nothing_and_does_not_count_as_complete(write_feed, tmp_path):
    full = catalogue(write_feed, hide_missing=True)
    path = stock_file(tmp_path, "sku,price,num_in_stock\nSKU-P1,12.00,1\n")

    run, out = sync("--source", path, "--partner", "Acme Books", "--hide-missing")

    assert (run.status, run.hidden) == ("succeeded", 0)
    assert "hide-missing: nothing hidden because this is a partial run" in out
    assert Product.objects.filter(is_public=False).count() == 0
    # The full feed's next run still sees its own products: the partial run did not make
    # them look missing (or seen).
    again = sync_run_execute(full, hide_missing=True, full=True)
    assert (again.hidden, again.failed) == (0, 0)
    assert Product.objects.filter(is_public=False).count() == 0


def test_the_partial_setting_makes_scheduled_runs_partial(write_feed, settings):
    catalogue(write_feed)
    path = write_feed([{"upc": "P1", "title": "Scheduled"}], name="scheduled.json")
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SOURCE": path, "PARTIAL": True}

    run = sync_run_execute(trigger=SyncRun.Trigger.SCHEDULE)

    assert (run.partial, run.updated) == (True, 1)
    assert Product.objects.get(upc="P1").title == "Scheduled"


def test_a_mapping_declares_a_partial_feed(write_feed, tmp_path):
    catalogue(write_feed)
    mapping = tmp_path / "warehouse.toml"
    mapping.write_text(
        'format = "csv"\npartial = true\n[fields]\npartner_sku = "Item"\n'
        'partner = {value = "Acme Books"}\nnum_in_stock = "On hand"\n',
        encoding="utf-8",
    )
    path = stock_file(tmp_path, "Item,On hand\nSKU-P4,42\n", name="warehouse.csv")

    run, _ = sync("--source", path, "--mapping", str(mapping))

    assert (run.partial, run.updated, run.failed) == (True, 1, 0)
    assert StockRecord.objects.get(partner_sku="SKU-P4").num_in_stock == 42


def test_a_stock_file_without_a_partner_is_refused_with_the_option_to_give(write_feed, tmp_path):
    path = stock_file(tmp_path, "sku,price\nSKU-P1,1.00\n")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r"no partner column: name the partner"):
        call_command("sync_products", "--source", path, "--partial", stdout=StringIO())
