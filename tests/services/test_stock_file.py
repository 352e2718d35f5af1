"""Stock files: the lean checks of stock rows agree with the full validation, bad rows fail
alone naming their field, and a partial run's default batch size."""

from decimal import Decimal

import pytest
from oscar.core.loading import get_model

from productsync.exceptions import RecordError
from productsync.models import SyncFailure, SyncItem
from productsync.partial import partial_parse, stock_item
from tests.services.test_partial import catalogue, stock_file, sync

StockRecord = get_model("partner", "StockRecord")

ROW = {"partner": "Acme Books", "partner_sku": "SKU-P1"}
PAYLOADS = [
    {**ROW, "price": "12.50", "num_in_stock": "7"},
    {**ROW, "price": "0", "num_in_stock": 0},
    {**ROW, "price": "9999999999.99", "currency": "EUR"},
    {**ROW, "num_in_stock": "2147483647"},
    {**ROW},
    # Each of these goes through the full validation: the lean checks do not decide them.
    {**ROW, "price": " 12.50"},
    {**ROW, "price": "12.505"},
    {**ROW, "price": "-1"},
    {**ROW, "price": "1e3"},
    {**ROW, "price": 12.5},
    {**ROW, "num_in_stock": "-1"},
    {**ROW, "num_in_stock": "007"},
    {**ROW, "num_in_stock": "2147483648"},
    {**ROW, "num_in_stock": True},
    {**ROW, "currency": "eur"},
    {**ROW, "partner_sku": " SKU-P1 "},
    {**ROW, "partner_sku": "SKU-\x00"},
    {**ROW, "partner_sku": "x" * 129},
    {**ROW, "partner": "Äcme"},
    {**ROW, "title": "No"},
    {"partner_sku": "SKU-P1", "price": "1.00"},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_lean_checks_of_a_stock_row_agree_with_the_full_validation(payload):
    lean = stock_item(3, payload)
    try:
        full = partial_parse(payload)
    except RecordError:
        full = None
    if lean is None:
        return  # decided by partial_parse alone, as before
    assert full is not None, payload
    assert lean.record == full
    assert (lean.position, lean.payload) == (3, payload)


@pytest.mark.django_db
def test_bad_rows_of_a_stock_file_fail_alone_naming_item_and_field(write_feed, tmp_path):
    catalogue(write_feed)
    path = stock_file(
        tmp_path,
        "sku,price,num_in_stock\nSKU-P1,abc,1\nSKU-P2,2.00,-3\nSKU-P3,3.001,1\n"
        "NOPE,1.00,1\nSKU-P4,4.00,4\nSKU-P4,4.50,5\n SKU-P2 ,2.50,\n\nSKU-P5,1.00\n",
    )

    run, _ = sync("--source", path, "--partner", "Acme Books")

    # The count before the run (rows, not payloads) is what the run read: the blank line
    # is no item, the short row is one that fails.
    assert (run.total_items, run.items, run.failed, run.updated) == (8, 8, 5, 3)
    failures = {f.position: (f.field, f.message) for f in SyncFailure.objects.filter(run=run)}
    assert sorted(failures) == [0, 1, 2, 3, 7]
    assert failures[7][1] == "line 10: expected 3 fields, got 2"
    assert [failures[i][0] for i in range(4)] == [
        "price",
        "num_in_stock",
        "price",
        "partner_sku",
    ]
    assert failures[0][1].startswith("price: ")
    assert failures[3][1] == (
        "partner_sku: no stock record of partner 'Acme Books' with partner_sku 'NOPE'"
    )
    values = {
        sr.partner_sku: (sr.price, sr.num_in_stock)
        for sr in StockRecord.objects.filter(partner__name="Acme Books")
    }
    assert values["SKU-P1"][0] == Decimal("10.00")  # its row failed: left as it was
    # A SKU given twice in a batch: the later row over the earlier (the first counts as
    # updated, the second too); a SKU in spaces is the SKU.
    assert values["SKU-P4"] == (Decimal("4.50"), 5)
    assert values["SKU-P2"][0] == Decimal("2.50")


@pytest.mark.django_db
def test_a_partial_run_without_a_batch_size_takes_partial_batch_size(
    write_feed, tmp_path, settings
):
    catalogue(write_feed)
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "PARTIAL_BATCH_SIZE": 2}
    path = stock_file(tmp_path, "sku,num_in_stock\nSKU-P1,1\nSKU-P2,2\nSKU-P3,3\n")

    run, _ = sync("--source", path, "--partner", "Acme Books")

    assert (run.batch_size, run.batches, run.updated) == (2, 2, 3)
    run, _ = sync("--source", path, "--partner", "Acme Books", "--batch-size", "1")
    assert (run.batch_size, run.batches, run.unchanged) == (1, 3, 3)


def _changes(run) -> dict[int, list | None]:
    return dict(SyncItem.objects.filter(run=run).values_list("position", "changes"))


@pytest.mark.django_db
def test_a_stock_file_preview_lists_each_changed_stock_record_old_and_new(write_feed, tmp_path):
    catalogue(write_feed)
    path = stock_file(
        tmp_path, "sku,price,num_in_stock\nSKU-P1,12.5,7\nSKU-P2,10.00,5\nSKU-P3,10.00,0\n"
    )

    run, out = sync("--source", path, "--partner", "Acme Books", "--dry-run", "--diff")

    assert (run.dry_run, run.updated, run.unchanged, run.item_rows) == (True, 2, 1, 3)
    assert _changes(run) == {
        0: [
            ["stockrecords[Acme Books/SKU-P1].price", "10.00", "12.50"],
            ["stockrecords[Acme Books/SKU-P1].num_in_stock", 5, 7],
        ],
        1: None,
        2: [["stockrecords[Acme Books/SKU-P3].num_in_stock", 5, 0]],
    }
    assert "  item 0 (SKU-P1): updated\n" in out
    assert "    stockrecords[Acme Books/SKU-P1].price: '10.00' -> '12.50'\n" in out
    assert "    stockrecords[Acme Books/SKU-P3].num_in_stock: 5 -> 0\n" in out
    assert StockRecord.objects.get(partner_sku="SKU-P1", partner__name="Acme Books").price == 10


@pytest.mark.django_db
def test_a_partial_feed_preview_lists_product_and_stock_changes(write_feed):
    catalogue(write_feed)
    stock = {"partner": "Acme Books", "partner_sku": "SKU-P2", "num_in_stock": 0}
    feed = [
        {"upc": "P1", "title": "A new title", "is_public": True},
        {"upc": "P2", "stockrecords": [stock]},
    ]
    path = write_feed(feed, name="partial.jsonl")

    run, _ = sync("--source", path, "--partial", "--dry-run", "--diff")

    assert _changes(run) == {
        0: [["title", "Product P1", "A new title"]],
        1: [["stockrecords[Acme Books/SKU-P2].num_in_stock", 5, 0]],
    }


@pytest.mark.django_db
def test_a_real_stock_run_records_its_changes_without_a_false_changes_max_note(
    write_feed, tmp_path
):
    catalogue(write_feed)
    path = stock_file(tmp_path, "sku,price,num_in_stock\nSKU-P1,11.00,5\nSKU-P2,10.00,5\n")

    run, _ = sync("--source", path, "--partner", "Acme Books")

    assert (run.updated, run.unchanged) == (1, 1)
    assert not [note for note in run.notes if "CHANGES_MAX" in note], run.notes
    assert _changes(run) == {0: [["stockrecords[Acme Books/SKU-P1].price", "10.00", "11.00"]]}
