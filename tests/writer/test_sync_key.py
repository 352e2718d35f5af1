"""An item's `upc` is its product's key; Oscar's UPC is the item's barcode where it gives one
(empty: none), else the key. The key is kept in the sync state, so a product is found again
whatever its UPC became, and a UPC held by another product fails the item naming both."""

import io
import json
import sqlite3
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from oscar.core.loading import get_model

from productsync.models import SyncedProduct
from productsync.services import sync_run_execute
from productsync.writer import products_by_key
from tests.conftest import product
from tests.writer.test_roundtrip import export, shop_empty

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")
Category = get_model("catalogue", "Category")
Partner = get_model("partner", "Partner")
ProductClass = get_model("catalogue", "ProductClass")


def upcs() -> dict[str, str]:
    """{sync key: Oscar's UPC} of every synced product (Oscar reads a NULL UPC as "")."""
    return dict(SyncedProduct.objects.values_list("sync_key", "product__upc"))


def parent(upc: str, children: list[dict], **fields) -> dict:
    item = product(upc, stockrecords=[], children=children, **fields)
    return item


def child(upc: str, **fields) -> dict:
    sku = {"partner": "Acme Books", "partner_sku": f"SKU-{upc}", "price": "5.00"}
    return {"upc": upc, "stockrecords": [sku], **fields}


def test_the_barcode_is_the_upc_and_the_key_finds_the_product_again(write_feed):
    feed = [
        product("handle-a", barcode="5012345678900"),
        product("handle-b", barcode=""),
        product("handle-c"),
        parent("shirt", [child("shirt / S", barcode="0001"), child("shirt / M", barcode="")]),
    ]
    run = sync_run_execute(write_feed(feed))
    assert (run.created, run.failed) == (4, 0), list(run.failure_set.values("message"))
    assert upcs() == {
        "handle-a": "5012345678900",
        "handle-b": "",
        "handle-c": "handle-c",
        "shirt": "shirt",
        "shirt / S": "0001",
        "shirt / M": "",
    }
    assert Product.objects.filter(upc__isnull=True).count() == 2  # none, not a shared ""
    count = Product.objects.count()

    # New barcodes, a title changed: the same products are updated, none created.
    feed[0]["barcode"] = "5012345678917"
    feed[1]["barcode"] = "4006381333931"
    feed[3]["children"][1]["barcode"] = "0002"
    feed[2]["title"] = "Renamed"
    again = sync_run_execute(write_feed(feed, "feed2.json"))
    assert (again.created, again.updated, again.failed) == (0, 4, 0)
    assert Product.objects.count() == count
    assert upcs()["handle-a"] == "5012345678917"
    assert upcs()["handle-b"] == "4006381333931"
    assert upcs()["shirt / M"] == "0002"
    assert Product.objects.get(upc="handle-c").title == "Renamed"

    # A feed without barcodes leaves the UPCs as they are (it does not carry them).
    plain = [{k: v for k, v in item.items() if k != "barcode"} for item in feed]
    sync_run_execute(write_feed(plain, "feed3.json"))
    assert upcs()["handle-a"] == "5012345678917"
    assert Product.objects.count() == count


def test_a_upc_edited_in_the_dashboard_does_not_make_a_second_product(write_feed):
    sync_run_execute(write_feed([product("P1")]))
    Product.objects.filter(upc="P1").update(upc="EDITED")
    run = sync_run_execute(write_feed([product("P1", title="New title")], "again.json"))
    assert (run.created, run.updated, run.failed) == (0, 1, 0)
    assert list(Product.objects.values_list("upc", "title")) == [("EDITED", "New title")]


def test_a_key_names_the_synced_product_before_a_dashboard_product_of_that_upc(write_feed):
    sync_run_execute(write_feed([product("K1", barcode="B1")]))
    book = ProductClass.objects.get(name="Book")
    Product.objects.create(upc="K1", title="Made by hand", product_class=book)
    run = sync_run_execute(write_feed([product("K1", barcode="B1", title="Synced")], "b.json"))
    assert (run.created, run.updated, run.failed) == (0, 1, 0)
    assert Product.objects.get(productsync_state__sync_key="K1").title == "Synced"
    assert Product.objects.get(upc="K1").title == "Made by hand"


def test_a_product_made_in_the_dashboard_is_found_by_its_upc(write_feed):
    made = Product.objects.create(
        upc="DASH-1", title="Made by hand", product_class=ProductClass.objects.create(name="Book")
    )
    run = sync_run_execute(write_feed([product("DASH-1", barcode="123")]))
    assert (run.created, run.updated) == (0, 1)
    made.refresh_from_db()
    assert (made.upc, made.title) == ("123", "Product DASH-1")
    assert SyncedProduct.objects.get(product=made).sync_key == "DASH-1"


def test_a_upc_held_by_another_product_fails_the_item_naming_both(write_feed):
    sync_run_execute(write_feed([product("A", barcode="111"), product("B")]))
    feed = [
        product("C", barcode="111"),  # A's barcode
        product("D", barcode="B"),  # B's UPC (its key)
        product("E", barcode="222"),
        product("F", barcode="222"),  # E's, earlier in the same batch
        product("A", barcode="111"),  # its own: fine
    ]
    run = sync_run_execute(write_feed(feed, "clash.json"))
    failures = dict(run.failure_set.values_list("upc", "message"))
    assert failures == {
        "C": "barcode: '111' is already the UPC of product 'A'",
        "D": "barcode: 'B' is already the UPC of product 'B'",
        "F": "barcode: '222' is already the UPC of the item at position 2",
    }
    assert dict(run.failure_set.values_list("upc", "field")) == dict.fromkeys("CDF", "barcode")
    assert upcs() == {"A": "111", "B": "B", "E": "222"}


def test_a_stock_file_finds_products_by_their_key(write_feed, tmp_path):
    sync_run_execute(write_feed([product("K1", barcode="999")]))
    stock = tmp_path / "stock.csv"
    stock.write_text("partner,partner_sku,num_in_stock\nAcme Books,SKU-K1,42\n", encoding="utf-8")
    run = sync_run_execute(str(stock), partial=True)
    assert (run.updated, run.failed) == (1, 0), list(run.failure_set.values("message"))
    partial = write_feed([{"upc": "K1", "title": "Partly"}], "partial.json")
    run = sync_run_execute(partial, partial=True)
    assert (run.updated, run.failed) == (1, 0), list(run.failure_set.values("message"))
    item = Product.objects.get(upc="999")
    assert (item.title, item.stockrecords.get().num_in_stock) == ("Partly", 42)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_products_with_barcodes_and_without_upc_survive_export_and_import(
    fmt, tmp_path, write_feed
):
    sync_run_execute(write_feed([product("K1", barcode="5012345678900"), product("K2")]))
    book = ProductClass.objects.get(name="Book")
    nameless = Product.objects.create(upc=None, title="No UPC", product_class=book)
    blank = Product.objects.create(upc="", title="Blank UPC", product_class=book)
    Product.objects.filter(pk=blank.pk).update(upc=None)  # Oscar stores none as NULL
    before = sorted(Product.objects.values_list("upc", "title"), key=str)

    exported = export(fmt, tmp_path)

    # Into the same shop: every product is found again, none is created.
    same = sync_run_execute(exported)
    assert (same.created, same.failed) == (0, 0), list(same.failure_set.values("message"))
    assert sorted(Product.objects.values_list("upc", "title"), key=str) == before
    assert SyncedProduct.objects.get(product=nameless).sync_key == f"oscar-product-{nameless.pk}"

    # Into an empty shop: the same products, UPCs and no UPCs.
    shop_empty()
    again = sync_run_execute(exported)
    assert (again.created, again.failed) == (4, 0), list(again.failure_set.values("message"))
    assert sorted(Product.objects.values_list("upc", "title"), key=str) == before


def test_the_export_names_each_product_by_its_key_and_gives_its_barcode(write_feed):
    sync_run_execute(write_feed([product("K1", barcode="777"), product("K2", barcode="")]))
    out = io.StringIO()
    call_command("export_products", "--format", "jsonl", stdout=out)
    items = {(i["upc"], i["barcode"]) for i in map(json.loads, out.getvalue().splitlines())}
    assert items == {("K1", "777"), ("K2", "")}


def test_a_feed_clearing_every_upc_is_stopped_by_the_mass_change_guard(write_feed):
    feed = [product(f"K{i}", barcode=f"50000000000{i:02}") for i in range(12)]
    sync_run_execute(write_feed(feed))
    cleared = [{**item, "barcode": ""} for item in feed]
    run = sync_run_execute(write_feed(cleared, "cleared.json"))
    assert run.status == "failed"
    assert "barcode: 12 of 12 matched products would be cleared" in run.error
    assert Product.objects.filter(upc__isnull=True).count() == 0
    forced = sync_run_execute(write_feed(cleared, "cleared.json"), allow_mass_change=True)
    assert (forced.updated, Product.objects.filter(upc__isnull=True).count()) == (12, 12)


def test_a_preview_finds_an_item_by_its_barcode(write_feed):
    feed = [product("K1", barcode="5012345678900"), parent("P", [child("P / S", barcode="77")])]
    run = sync_run_execute(write_feed(feed), dry_run=True)
    codes = dict(run.item_set.filter(outcome="created").values_list("upc", "codes"))
    assert "5012345678900" in codes["K1"]
    assert "77" in codes["P"]


def test_two_products_of_one_item_with_one_barcode_fail_that_item_alone(write_feed):
    twins = parent("P", [child("P / S", barcode="77"), child("P / M", barcode="77")])
    own = parent("Q", [child("Q / S", barcode="Q")])  # the parent's UPC is its key, Q
    run = sync_run_execute(write_feed([twins, own, product("R", barcode="88")]))
    failures = dict(run.failure_set.values_list("upc", "message"))
    assert failures == {
        "P": "children[1].barcode: '77' is also the UPC of children[0]",
        "Q": "children[0].barcode: 'Q' is also the UPC of the parent",
    }
    assert (run.created, run.batch_set.exclude(error="").count()) == (1, 0)


def test_a_barcode_moves_to_another_product_in_one_run(write_feed):
    sync_run_execute(write_feed([product("A", barcode="111"), product("B", barcode="222")]))
    moved = [product("A", barcode=""), product("B", barcode="111")]
    run = sync_run_execute(write_feed(moved, "moved.json"))
    assert (run.updated, run.failed) == (2, 0), list(run.failure_set.values("message"))
    assert upcs() == {"A": "", "B": "111"}
    # A swap, in feed order, would need a UPC held twice at once: the first item fails.
    swap = [product("A", barcode="111"), product("B", barcode="")]
    run = sync_run_execute(write_feed(swap, "swap.json"))
    assert dict(run.failure_set.values_list("upc", "field")) == {"A": "barcode"}


def test_a_dashboard_product_holding_a_synced_key_as_upc_keeps_its_upc_and_stock(write_feed):
    sync_run_execute(write_feed([product("K1", barcode="B1")]))
    book = ProductClass.objects.get(name="Book")
    made = Product.objects.create(upc="K1", title="Made by hand", product_class=book)
    partner = Partner.objects.get(name="Acme Books")
    made.stockrecords.create(partner=partner, partner_sku="HAND-1", price="1.00")
    stock = [{"partner": "Acme Books", "partner_sku": "HAND-1", "price": "2.00"}]
    feed = [product("K1", barcode="K1"), product("K1", barcode="B1", stockrecords=stock)]
    run = sync_run_execute(write_feed(feed[:1], "a.json"))
    assert run.failure_set.get().message == "barcode: 'K1' is already the UPC of product 'K1'"
    run = sync_run_execute(write_feed(feed[1:], "b.json"))
    assert "'HAND-1' of 'Acme Books' belongs to product 'K1'" in run.failure_set.get().message
    assert list(made.stockrecords.values_list("price", flat=True)) == [Decimal("1.00")]
    assert Product.objects.get(pk=made.pk).upc == "K1"


def test_a_partial_item_giving_a_barcode_is_refused(write_feed):
    sync_run_execute(write_feed([product("K1")]))
    run = sync_run_execute(write_feed([{"upc": "K1", "barcode": "1"}], "p.json"), partial=True)
    failure = run.failure_set.get()
    assert (failure.field, failure.message.split(";")[-1]) == (
        "barcode",
        " barcode is not one of them",
    )


def test_tens_of_thousands_of_keys_are_looked_up_in_one_query(django_assert_num_queries):
    """Keys and barcodes of a 10,000-item batch, asked twice (by UPC, by key): more values
    than SQLite's usual limit of variables (32,766; Debian's build takes 250,000)."""
    keys = {f"K{i}" for i in range(20_000)}
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        connection.ensure_connection()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    try:
        with django_assert_num_queries(1):
            assert products_by_key(keys) == {}
    finally:
        if sqlite:
            connection.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)


def test_a_hostile_barcode_fails_its_item_naming_the_field(write_feed):
    feed = [
        product("K1", barcode="9" * 65),
        product("K2", barcode="12\x003"),
        product("K3", barcode=["1", "2"]),
        product("K4", barcode="  5012345678900  "),
        product("K5\x00"),  # a key no database can be asked for, as a barcode above
    ]
    run = sync_run_execute(write_feed(feed))
    fields = dict(run.failure_set.values_list("upc", "field"))
    expected = {**dict.fromkeys(["K1", "K2", "K3"], "barcode"), "K5\\x00": "upc"}
    assert fields == expected, (run.status, run.error)
    assert upcs() == {"K4": "5012345678900"}
