"""Stock that orders consume is never put back: a stock level is written when the feed's
value for it changes, never to undo a change made in the shop."""

from io import StringIO

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.checks import check_settings
from productsync.services import sync_run_execute
from tests.conftest import product

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

pytestmark = pytest.mark.django_db


def stock(upc: str):
    return StockRecord.objects.get(product__upc=upc)


@pytest.fixture
def synced(write_feed):
    items = [product(f"S{i}", stockrecords=[]) for i in range(1, 4)]
    for item in items:
        item["stockrecords"] = [
            {
                "partner": "Acme Books",
                "partner_sku": f"SKU-{item['upc']}",
                "price": "10.00",
                "num_in_stock": 22,
            }
        ]
    path = write_feed(items)
    run = sync_run_execute(path, batch_size=2)
    assert (run.status, run.created) == ("succeeded", 3)
    return items


def ship(upc: str, units: int) -> None:
    """What Oscar's checkout and fulfilment do: allocate, then consume the allocation."""
    record = stock(upc)
    record.allocate(units)
    record.consume_allocation(units)


@pytest.mark.parametrize("full", [False, True])
def test_units_an_order_shipped_are_not_put_back_by_the_unchanged_feed(synced, write_feed, full):
    ship("S1", 2)
    assert stock("S1").num_in_stock == 20

    run = sync_run_execute(write_feed(synced), batch_size=2, full=full)

    # Without full, the unchanged file is skipped whole: a consumed unit is no drift.
    assert (run.status, run.repaired, run.updated) == ("succeeded", 0, 0)
    assert run.unchanged == (3 if full else 0)
    assert (stock("S1").num_in_stock, stock("S1").num_allocated) == (20, 0)


def test_a_new_stock_level_in_the_feed_is_written(synced, write_feed):
    ship("S1", 2)
    synced[0]["stockrecords"][0]["num_in_stock"] = 18

    run = sync_run_execute(write_feed(synced, name="new.json"), batch_size=2)

    assert (run.updated, run.repaired) == (1, 0)
    assert stock("S1").num_in_stock == 18


def test_a_price_change_leaves_the_shipped_stock_alone(synced, write_feed):
    ship("S1", 2)
    synced[0]["stockrecords"][0]["price"] = "12.00"

    run = sync_run_execute(write_feed(synced, name="new.json"), batch_size=2)

    assert run.updated == 1
    assert (str(stock("S1").price), stock("S1").num_in_stock) == ("12.00", 20)


def test_a_repair_of_another_field_leaves_the_shipped_stock_alone(synced, write_feed):
    ship("S1", 2)
    Product.objects.filter(upc="S1").update(title="Edited by a script")

    run = sync_run_execute(write_feed(synced), batch_size=2, full=True)

    assert (run.repaired, run.unchanged) == (1, 2)
    assert Product.objects.get(upc="S1").title == "Product S1"
    assert stock("S1").num_in_stock == 20


def test_a_stock_authoritative_feed_sets_its_levels_and_says_so(synced, write_feed):
    ship("S1", 2)
    synced[0]["stockrecords"][0]["price"] = "12.00"

    run = sync_run_execute(
        write_feed(synced, name="new.json"), batch_size=2, stock_authoritative=True
    )

    assert run.updated == 1
    assert (str(stock("S1").price), stock("S1").num_in_stock) == ("12.00", 22)
    assert any(note.startswith("stock authoritative") for note in run.notes)


def test_the_setting_makes_every_run_stock_authoritative(synced, write_feed, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "STOCK_AUTHORITATIVE": True}
    ship("S1", 2)
    synced[0]["stockrecords"][0]["price"] = "12.00"
    out = StringIO()

    call_command("sync_products", "--source", write_feed(synced, name="new.json"), stdout=out)

    assert stock("S1").num_in_stock == 22
    assert "Note: stock authoritative" in out.getvalue()
    default = sync_run_execute(write_feed(synced, name="new.json"), stock_authoritative=False)
    assert not any(note.startswith("stock authoritative") for note in default.notes)


def test_stock_authoritative_must_be_true_or_false(settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "STOCK_AUTHORITATIVE": "yes"}

    errors = check_settings(None)

    assert "productsync.E032" in {error.id for error in errors}


@pytest.mark.parametrize("between", ["no stock records", "no stock level", "owns title"])
def test_a_run_not_carrying_stock_levels_keeps_what_the_feed_gave(synced, write_feed, between):
    """A run between whose items do not carry the levels (or do not own them) must not forget
    the level the feed gave: the feed giving 22 again after it must not put back 2 shipped."""
    ship("S1", 2)
    middle = [{**item, "title": item["title"] + " v2"} for item in synced]
    options = {}
    if between == "no stock records":
        middle = [{k: v for k, v in item.items() if k != "stockrecords"} for item in middle]
    elif between == "no stock level":
        for item in middle:
            item["stockrecords"] = [
                {k: v for k, v in sr.items() if k != "num_in_stock"} for sr in item["stockrecords"]
            ]
    else:
        options["owns"] = "title"
    first = sync_run_execute(write_feed(middle, "middle.json"), allow_mass_change=True, **options)
    assert (first.status, first.updated, stock("S1").num_in_stock) == ("succeeded", 3, 20)

    again = sync_run_execute(write_feed(synced, "again.json"), allow_mass_change=True)

    assert again.status == "succeeded"
    assert (stock("S1").num_in_stock, stock("S2").num_in_stock) == (20, 22)
