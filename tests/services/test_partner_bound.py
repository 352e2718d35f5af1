"""A run's partner bounds what it touches: a row naming another partner fails alone."""

import json
from decimal import Decimal

import pytest
from oscar.core.loading import get_model

from productsync.models import Feed, SyncFailure, SyncRun
from productsync.services import feed_run_execute
from tests.services.test_partial import catalogue, stock_file, sync

StockRecord = get_model("partner", "StockRecord")

pytestmark = pytest.mark.django_db


def record(partner: str, sku: str):
    return StockRecord.objects.get(partner__name=partner, partner_sku=sku)


def test_a_stock_row_naming_another_partner_fails_alone(write_feed, tmp_path):
    catalogue(write_feed)
    path = stock_file(
        tmp_path,
        "sku,price,num_in_stock,partner\nSKU-P1,0.01,0,Acme Books\nSKU-P1,4.00,2,Globex\n",
    )

    run, out = sync("--source", path, "--partner", "Globex")

    assert (run.updated, run.failed) == (1, 1)
    failure = SyncFailure.objects.get(run=run)
    assert (
        failure.message == "partner: row names partner 'Acme Books', this run writes 'Globex' only"
    )
    assert (record("Acme Books", "SKU-P1").price, record("Acme Books", "SKU-P1").num_in_stock) == (
        Decimal("10.00"),
        5,
    )
    assert record("Globex", "SKU-P1").price == Decimal("4.00")


def test_a_partial_feed_keyed_by_partner_and_sku_is_bounded_by_the_runs_partner(
    write_feed, tmp_path
):
    catalogue(write_feed)
    items = [
        {"partner": "Acme Books", "partner_sku": "SKU-P2", "price": "0.01"},
        {
            "upc": "P3",
            "stockrecords": [{"partner": "Acme Books", "partner_sku": "SKU-P3", "price": "0.02"}],
        },
        {"partner": "Globex", "partner_sku": "SKU-P1", "price": "4.00"},
    ]
    path = write_feed(items, name="partial.json")

    run, _ = sync("--source", path, "--partner", "Globex")

    assert (run.updated, run.failed) == (1, 2)
    assert record("Acme Books", "SKU-P2").price == Decimal("10.00")
    assert record("Acme Books", "SKU-P3").price == Decimal("10.00")
    assert record("Globex", "SKU-P1").price == Decimal("4.00")
    assert set(SyncFailure.objects.filter(run=run).values_list("field", flat=True)) == {"partner"}


def test_a_run_without_a_partner_writes_every_partners_rows(write_feed, tmp_path):
    catalogue(write_feed)
    path = stock_file(
        tmp_path, "sku,price,num_in_stock,partner\nSKU-P1,0.01,0,Acme Books\nSKU-P1,4,2,Globex\n"
    )

    run, _ = sync("--source", path, "--partial")

    assert (run.updated, run.failed) == (2, 0)
    assert json.dumps(run.notes)  # recorded as usual


def test_a_partial_feed_with_a_partner_is_bounded_by_it(write_feed):
    catalogue(write_feed)
    items = [
        {"partner": "Acme Books", "partner_sku": "SKU-P2", "price": "0.01"},
        {"partner": "Globex", "partner_sku": "SKU-P1", "price": "4.00"},
    ]
    Feed.objects.create(
        name="globex-prices", kind="partial", partner="Globex", source=write_feed(items, "p.json")
    )

    run = SyncRun.objects.get(pk=feed_run_execute("globex-prices"))

    assert (run.partner, run.updated, run.failed) == ("Globex", 1, 1)
    failure = SyncFailure.objects.get(run=run)
    assert failure.message == (
        "partner: row names partner 'Acme Books', this run writes 'Globex' only"
    )
    assert record("Acme Books", "SKU-P2").price == Decimal("10.00")
    assert record("Globex", "SKU-P1").price == Decimal("4.00")
