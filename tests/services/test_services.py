"""The run loop end to end in-process: counts, history, updates, failures, dry runs."""

import json
import re

import pytest
from django.db import connection
from django.utils import timezone
from oscar.core.loading import get_model

from productsync.models import SyncBatch, SyncFailure
from productsync.services import sync_run_execute
from tests.catalogue import catalogue_clear, catalogue_snapshot
from tests.conftest import FIXTURES, product

Product = get_model("catalogue", "Product")
Category = get_model("catalogue", "Category")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")

pytestmark = pytest.mark.django_db


def test_demo_feed_lands_in_13_batches_with_history():
    run = sync_run_execute(str(FIXTURES / "products.json"), batch_size=15)
    assert (run.status, run.items, run.created, run.failed) == ("succeeded", 194, 194, 0)
    assert (run.batches, run.failed_batches, run.total_items) == (13, 0, 194)
    assert run.finished_at is not None and run.trigger == "command"
    assert Product.objects.count() == 194
    batches = list(SyncBatch.objects.filter(run=run))
    assert [b.number for b in batches] == list(range(1, 14))
    assert [b.items for b in batches] == [15] * 12 + [14]
    assert (batches[-1].first_position, batches[-1].last_position) == (180, 193)
    assert all(b.status == "succeeded" for b in batches)
    feed = json.loads((FIXTURES / "products.json").read_text())
    by_upc = {p.upc: p for p in Product.objects.all()}
    for item in feed:
        stored = by_upc[item["upc"]]
        assert stored.title == item["title"]
        assert stored.slug  # generated as Product.save() would
        assert stored.stockrecords.count() == len(item.get("stockrecords", []))
    assert Category.objects.filter(depth__gte=2).count() >= 12
    assert Partner.objects.count() >= 2


def test_rerun_is_all_unchanged_and_writes_nothing_to_the_catalogue(write_feed):
    path = write_feed([product(str(i)) for i in range(20)])
    sync_run_execute(path, batch_size=7)
    before = {p.upc: p.date_updated for p in Product.objects.all()}
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        run = sync_run_execute(path, batch_size=7, full=True)
    assert (run.status, run.unchanged, run.created, run.updated) == ("succeeded", 20, 0, 0)
    assert {p.upc: p.date_updated for p in Product.objects.all()} == before
    written = (re.match(r'(?:INSERT INTO|UPDATE|DELETE FROM) "(\w+)"', q["sql"]) for q in queries)
    catalogue_writes = [m[1] for m in written if m and m[1].startswith(("catalogue_", "partner_"))]
    assert catalogue_writes == []


def test_changed_items_are_updated_to_match_the_feed(write_feed):
    sync_run_execute(write_feed([product("1"), product("2"), product("3")]), batch_size=2)
    changed = [
        product("1", title="Renamed", categories=["Books > Fiction", "Gifts"]),
        product(
            "2",
            is_public=False,
            stockrecords=[
                {"partner": "Acme Books", "partner_sku": "NEW-2", "price": "1.50"},
                {"partner": "Other", "partner_sku": "O-2", "price": "2", "num_in_stock": None},
            ],
        ),
        product("3"),
    ]
    run = sync_run_execute(write_feed(changed, "changed.json"), batch_size=2)
    assert (run.updated, run.unchanged, run.created) == (2, 1, 0)
    one = Product.objects.get(upc="1")
    assert one.title == "Renamed"
    assert sorted(c.full_name for c in one.categories.all()) == ["Books > Fiction", "Gifts"]
    two = Product.objects.get(upc="2")
    assert two.is_public is False
    # The old Acme SKU left the feed, so it is gone; the new partner's record was added.
    assert sorted(two.stockrecords.values_list("partner_sku", "num_in_stock")) == [
        ("NEW-2", None),
        ("O-2", None),
    ]
    assert str(two.stockrecords.get(partner_sku="NEW-2").price_currency) == "GBP"


def test_an_edit_in_the_dashboard_is_overwritten_by_the_next_sync(write_feed):
    path = write_feed([product("1")])
    sync_run_execute(path)
    edited = Product.objects.get(upc="1")
    edited.title = "Edited by staff"
    edited.save()
    run = sync_run_execute(path)
    assert (run.updated, run.repaired) == (0, 1)  # the feed did not change: a repair
    assert Product.objects.get(upc="1").title == "Product 1"


def test_bad_items_fail_alone_with_position_upc_message_and_payload(write_feed):
    bad = {
        2: product("2", title=""),
        4: product("4", stockrecords=[{"partner": "A", "partner_sku": "x", "price": "-1"}]),
        5: product("1"),  # duplicate of position 1, in another batch
        6: product("6", stockrecords=[{"partner": "Acme Books", "partner_sku": "SKU-3"}]),
        7: product("7", stockrecords=[{"partner": "A", "partner_sku": "x", "currency": "£"}]),
    }
    feed = [bad.get(i, product(str(i))) for i in range(9)]
    run = sync_run_execute(write_feed(feed), batch_size=3)
    assert (run.status, run.items, run.created, run.failed) == ("completed_with_failures", 9, 4, 5)
    assert run.failed_batches == 3
    failures = {f.position: f for f in SyncFailure.objects.filter(run=run)}
    assert sorted(failures) == [2, 4, 5, 6, 7]
    assert failures[2].field == "title" and failures[2].upc == "2"
    assert "stockrecords[0].price" in failures[4].message
    assert failures[5].message == "upc: duplicate of the item at position 1"
    assert "'SKU-3' of 'Acme Books' belongs to product '3'" in failures[6].message
    assert "stockrecords[0].currency" in failures[7].message
    assert json.loads(failures[2].raw_payload) == feed[2]
    assert set(Product.objects.values_list("upc", flat=True)) == {"0", "1", "3", "8"}
    assert run.items == run.created + run.updated + run.unchanged + run.failed


def test_unknown_keys_are_ignored_and_counted_as_warnings(write_feed):
    run = sync_run_execute(write_feed([product("1", colour="red"), product("2", size=3)]))
    assert (run.status, run.created, run.warnings) == ("succeeded", 2, 2)
    assert run.notes == ["unknown keys ignored: colour, size"]


def test_an_unchanged_feed_file_is_not_read_again(write_feed):
    path = write_feed([product(str(i)) for i in range(20)])
    first = sync_run_execute(path, batch_size=7)
    before = catalogue_snapshot()

    second = sync_run_execute(path, batch_size=7)
    assert (second.status, second.items, second.batches, second.total_items) == (
        "succeeded",
        0,
        0,
        None,
    )
    assert second.notes == [
        f"the feed file is unchanged since run {first.pk} and so are the source's products: "
        "nothing to write (a full run reads every item anyway)"
    ]
    assert catalogue_snapshot() == before

    third = sync_run_execute(path, batch_size=7)  # unchanged since the skipped run too
    assert third.items == 0 and f"unchanged since run {second.pk} and" in third.notes[0]
    full = sync_run_execute(path, batch_size=7, full=True)
    assert (full.items, full.unchanged, full.batches) == (20, 20, 3)


def test_a_deleted_product_or_another_file_or_setting_makes_the_run_read_the_feed(write_feed):
    items = [product(str(i)) for i in range(5)]
    path = write_feed(items)
    sync_run_execute(path)
    Product.objects.get(upc="3").delete()
    assert (sync_run_execute(path).created, sync_run_execute(path).items) == (1, 0)

    write_feed([*items[:4], product("4", title="Renamed")])  # same path, new bytes
    assert sync_run_execute(path).updated == 1
    assert sync_run_execute(path, hide_missing=True).unchanged == 5
    assert sync_run_execute(path, hide_missing=True).items == 0


def test_an_edit_made_during_the_run_is_overwritten_by_the_next_one(write_feed):
    path = write_feed([product(str(i)) for i in range(4)])

    def edit_after_first_batch(run, result):
        if result.number == 1:
            Product.objects.filter(upc="0").update(title="Edited", date_updated=timezone.now())

    sync_run_execute(path, batch_size=2, on_batch=edit_after_first_batch)
    run = sync_run_execute(path, batch_size=2)
    assert (run.items, run.updated, run.repaired) == (4, 0, 1)
    assert Product.objects.get(upc="0").title == "Product 0"


@pytest.fixture
def reject_upc_in_database(db):
    """A database rule the validation does not know: products with UPC 'REJECT' fail."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER reject_upc BEFORE INSERT ON catalogue_product "
                "WHEN NEW.upc = 'REJECT' BEGIN SELECT RAISE(ABORT, 'upc REJECT refused'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION reject_upc() RETURNS trigger AS $$ BEGIN "
                "IF NEW.upc = 'REJECT' THEN RAISE EXCEPTION 'upc REJECT refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER reject_upc BEFORE INSERT ON catalogue_product "
                "FOR EACH ROW EXECUTE FUNCTION reject_upc()"
            )


def test_a_database_failure_fails_only_the_offending_item(write_feed, reject_upc_in_database):
    feed = [product("1"), product("REJECT"), product("3"), product("4")]
    run = sync_run_execute(write_feed(feed), batch_size=4)
    assert (run.status, run.created, run.failed) == ("completed_with_failures", 3, 1)
    failure = SyncFailure.objects.get(run=run)
    assert (failure.position, failure.upc) == (1, "REJECT")
    assert "upc REJECT refused" in failure.message
    batch = SyncBatch.objects.get(run=run)
    assert batch.status == "partial" and "retried item by item" in batch.error
    assert set(Product.objects.values_list("upc", flat=True)) == {"1", "3", "4"}
    assert StockRecord.objects.count() == 3


def test_a_truncated_feed_keeps_the_committed_batches(tmp_path):
    items = [json.dumps(product(str(i))) for i in range(7)]
    path = tmp_path / "cut.json"
    path.write_text("[" + ", ".join(items) + ', {"upc": "7", "tit', encoding="utf-8")
    run = sync_run_execute(str(path), batch_size=3)
    assert run.status == "failed"
    assert "feed broke at item 7" in run.error and "malformed JSON" in run.error
    assert (run.items, run.created, run.batches) == (7, 7, 3)
    assert Product.objects.count() == 7


def test_dry_run_counts_what_it_would_do_and_changes_nothing(write_feed):
    path = write_feed([product("1"), product("2", title=""), product("3")])
    run = sync_run_execute(path, batch_size=2, dry_run=True)
    assert run.dry_run and (run.status, run.created, run.failed) == (
        "completed_with_failures",
        2,
        1,
    )
    assert Product.objects.count() == 0
    assert Category.objects.count() == 0 and Partner.objects.count() == 0
    assert SyncBatch.objects.filter(run=run).count() == 2


def test_limit_stops_after_that_many_items():
    run = sync_run_execute(str(FIXTURES / "products.json"), batch_size=15, limit=20)
    assert (run.items, run.batches, run.total_items) == (20, 2, 20)


def test_formats_reach_the_same_catalogue(write_feed):
    feed = json.loads((FIXTURES / "products.json").read_text())
    sync_run_execute(write_feed(feed, "demo.jsonl"), batch_size=50)
    via_jsonl = catalogue_snapshot()
    catalogue_clear()
    sync_run_execute(str(FIXTURES / "products.json"), batch_size=15)
    assert catalogue_snapshot() == via_jsonl
