"""Drift repair: what someone changed since the last sync wrote it is written again, counted
`repaired`; allocations (orders) are never the feed's."""

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from oscar.core.loading import get_model

from productsync.models import SyncedProduct, SyncRun
from productsync.records import FINGERPRINT_VERSION
from productsync.services import sync_run_execute
from productsync.writer.capture import sync_writes
from tests.conftest import product, productsync_migrate

Product = get_model("catalogue", "Product")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductAttribute = get_model("catalogue", "ProductAttribute")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
StockRecord = get_model("partner", "StockRecord")

pytestmark = pytest.mark.django_db


def feed(write_feed) -> str:
    items = [product(f"D{i}", attributes={"colour": "red"}) for i in range(1, 6)]
    items.append(
        product(
            "PARENT",
            stockrecords=[],
            children=[
                {"upc": "CHILD-1", "title": "Small", "stockrecords": []},
                {"upc": "CHILD-2", "title": "Large", "stockrecords": []},
            ],
        )
    )
    return write_feed(items)


@pytest.fixture
def synced(write_feed, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREATE_ATTRIBUTES": True}
    path = feed(write_feed)
    run = sync_run_execute(path, batch_size=4)
    assert (run.status, run.created) == ("succeeded", 6)
    return path


def stock(upc: str):
    return StockRecord.objects.get(product__upc=upc)


@pytest.mark.parametrize("full", [False, True])
def test_a_dashboard_edit_of_a_stock_price_is_repaired(synced, full):
    record = stock("D2")
    record.price = Decimal("1.99")  # as the dashboard's stock record form saves it
    record.save()

    run = sync_run_execute(synced, batch_size=4, full=full)

    assert (run.status, run.repaired, run.updated, run.unchanged) == ("succeeded", 1, 0, 5)
    assert stock("D2").price == Decimal("10.00")
    # Repaired once: the next sync finds nothing to repair.
    again = sync_run_execute(synced, batch_size=4, full=True)
    assert (again.repaired, again.unchanged) == (0, 6)


def test_edits_by_anyone_to_what_the_feed_owns_are_repaired(synced):
    Product.objects.filter(upc="D1").update(title="Renamed by a script")  # no date_updated
    ProductCategory.objects.filter(product__upc="D3").delete()
    ProductAttributeValue.objects.filter(product__upc="D4").update(value_text="blue")
    StockRecord.objects.filter(product__upc="D5").update(price=0)
    Product.objects.filter(upc="CHILD-2").delete()

    run = sync_run_execute(synced, batch_size=4)

    assert (run.repaired, run.unchanged, run.created, run.updated) == (5, 1, 0, 0)
    assert Product.objects.get(upc="D1").title == "Product D1"
    assert [c.full_name for c in Product.objects.get(upc="D3").categories.all()] == [
        "Books > Computing"
    ]
    assert Product.objects.get(upc="D4").attr.colour == "red"
    assert stock("D5").price == Decimal("10.00")
    assert Product.objects.get(upc="CHILD-2").parent.upc == "PARENT"


def test_an_edit_of_what_the_feed_does_not_own_is_left_alone(synced):
    p = Product.objects.get(upc="D1")
    p.meta_title = "Set in the dashboard"
    p.save()

    run = sync_run_execute(synced, batch_size=4, full=True)

    assert (run.repaired, run.unchanged) == (0, 6)
    assert Product.objects.get(upc="D1").meta_title == "Set in the dashboard"


def test_an_allocation_made_by_an_order_is_never_overwritten(synced, write_feed):
    record = stock("D1")
    record.allocate(3)  # what Oscar's checkout does for an order

    for full in (False, True):
        run = sync_run_execute(synced, batch_size=4, full=full)
        assert (run.status, run.repaired, run.updated) == ("succeeded", 0, 0)
        assert stock("D1").num_allocated == 3
    # A changed feed writes the stock record again: price and stock, never the allocation.
    items = json.loads(Path(synced).read_text())
    items[0]["stockrecords"][0].update(price="11.00", num_in_stock=9)
    run = sync_run_execute(write_feed(items, name="changed.json"), batch_size=4)
    assert (run.updated, run.repaired) == (1, 0)
    record = stock("D1")
    assert (record.price, record.num_in_stock, record.num_allocated) == (Decimal("11.00"), 9, 3)


def test_a_stock_file_is_not_taken_for_drift_by_the_full_feed(synced, tmp_path):
    path = tmp_path / "stock.csv"
    path.write_text("sku,price,num_in_stock\nSKU-D1,12.00,2\n", encoding="utf-8")
    call_command(
        "sync_products", "--source", str(path), "--partner", "Acme Books", stdout=StringIO()
    )

    run = sync_run_execute(synced, batch_size=4, full=True)

    # What any sync wrote last is what the sync owns: the stock file's price stays.
    assert (run.repaired, run.unchanged) == (0, 6)
    assert (stock("D1").price, stock("D1").num_in_stock) == (Decimal("12.00"), 2)


@pytest.mark.parametrize("keyed_by", ["sku", "upc"])
def test_a_partial_run_leaves_an_earlier_edit_to_be_repaired(synced, tmp_path, keyed_by):
    edited = Product.objects.get(upc="D1")
    edited.title = "Edited in the dashboard"
    edited.save()
    path = tmp_path / "partial.csv"
    if keyed_by == "sku":
        path.write_text("sku,price,num_in_stock\nSKU-D1,12.00,2\nSKU-D2,13.00,3\n")
        extra = ["--partner", "Acme Books"]
    else:  # a product's own field, then its stock record, as upc-keyed rows give them
        path.write_text(
            "upc,description,partner,sku,price\n"
            "D1,New words,Acme Books,SKU-D1,12.00\nD2,New words,Acme Books,SKU-D2,13.00\n"
        )
        extra = ["--partial"]
    call_command("sync_products", "--source", str(path), *extra, stdout=StringIO())
    assert stock("D2").price == Decimal("13.00")

    run = sync_run_execute(synced, batch_size=4, full=True)

    # The edit made before the partial run is still seen: D1 is written again from the
    # feed, stock record included; D2, which no one edited, keeps what the partial run wrote.
    assert (run.repaired, run.unchanged) == (1, 5)
    assert Product.objects.get(upc="D1").title == "Product D1"
    assert stock("D1").price == Decimal("10.00")
    assert stock("D2").price == Decimal("13.00")


@pytest.mark.django_db(transaction=True)
def test_the_migration_to_change_capture_keeps_what_had_drifted(synced):
    """Upgrading from the digest: a product that had drifted is still repaired once, the
    others are not; undone, the digest is back and sees the same."""
    productsync_migrate("0019_feed_stock_authoritative_max_failures")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM productsync_syncedproduct WHERE state <> ''")
            assert cursor.fetchone()[0] == 8  # a digest of each product, none drifted
            # An edit as the last version saw it: no trigger counts it, the digest does.
            cursor.execute("UPDATE catalogue_product SET title = 'Edited' WHERE upc = 'D3'")
    finally:
        productsync_migrate()

    marked = SyncedProduct.objects.exclude(edits=0).values_list("product__upc", flat=True)
    assert list(marked) == ["D3"]
    run = sync_run_execute(synced, batch_size=4, full=True)
    assert (run.repaired, run.unchanged) == (1, 5)
    assert Product.objects.get(upc="D3").title == "Product D3"
    assert not SyncedProduct.objects.exclude(edits=0).exists()


def test_a_script_s_raw_sql_is_repaired_by_the_next_run(synced):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE partner_stockrecord SET price = 0.5 WHERE product_id = "
            "(SELECT id FROM catalogue_product WHERE upc = 'D4')"
        )
        cursor.execute(
            "DELETE FROM catalogue_productcategory WHERE product_id = "
            "(SELECT id FROM catalogue_product WHERE upc = 'D5')"
        )

    # The feed file is unchanged: the run still reads it, since products of it changed.
    run = sync_run_execute(synced, batch_size=4)

    assert (run.repaired, run.unchanged) == (2, 4)
    assert stock("D4").price == Decimal("10.00")
    assert Product.objects.get(upc="D5").categories.count() == 1


def test_edits_that_bypass_change_capture_are_repaired_by_compare(synced):
    # A script that writes as the sync does (or a TRUNCATE, or triggers switched off):
    # change capture does not see it, a run comparing by value does.
    with sync_writes():
        Product.objects.filter(upc="D1").update(title="Unseen")
        StockRecord.objects.filter(product__upc="D2").update(price=Decimal("0.10"))

    quiet = sync_run_execute(synced, batch_size=4, full=True)
    assert (quiet.repaired, quiet.unchanged) == (0, 6)

    run = sync_run_execute(synced, batch_size=4, compare=True)

    assert (run.status, run.repaired, run.unchanged, run.compare) == ("succeeded", 2, 4, True)
    assert Product.objects.get(upc="D1").title == "Product D1"
    assert stock("D2").price == Decimal("10.00")
    again = sync_run_execute(synced, batch_size=4, compare=True)
    assert (again.repaired, again.unchanged) == (0, 6)


def test_repaired_is_in_the_summary_the_json_and_the_admin(synced, admin_client):
    StockRecord.objects.filter(product__upc="D2").update(price=Decimal("2.00"))
    out = StringIO()

    call_command("sync_products", "--source", synced, "--no-progress", "--json", stdout=out)

    lines = out.getvalue().splitlines()
    assert "0 updated, 5 unchanged, 1 repaired" in lines[-2]
    summary = json.loads(lines[-1])
    assert (summary["repaired"], summary["unchanged"]) == (1, 5)
    run = SyncRun.objects.order_by("-pk").first()
    page = admin_client.get(f"/admin/productsync/syncrun/{run.pk}/change/").content.decode()
    assert "repaired" in page.lower()


def test_a_raw_fingerprint_of_another_version_is_validated_again_once(synced):
    """An upgrade that changes what a raw fingerprint means: every item is validated once
    (the record's fingerprint finds it unchanged), and skipped unvalidated again after."""
    SyncedProduct.objects.update(raw_fingerprint="0123456789abcdef0123456789abcdef")

    run = sync_run_execute(synced, batch_size=4, full=True)

    assert (run.updated, run.unchanged, run.repaired) == (0, 6, 0)
    stored = set(SyncedProduct.objects.values_list("raw_fingerprint", flat=True))
    assert len(stored) == 6 and all(f.startswith(FINGERPRINT_VERSION) for f in stored)
