"""A retry cannot destroy data: an item that failed only as a duplicate of an earlier item of
its feed is written only when asked, and the retry keeps the feed's positions."""

import pytest
from oscar.core.loading import get_model

from productsync.models import SyncRun
from productsync.services import sync_run_execute, sync_run_retry
from tests.conftest import product

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")


@pytest.fixture
def run_with_a_duplicate(write_feed) -> SyncRun:
    items = [product(f"R-{i}") for i in range(6)]
    items[1]["stockrecords"][0]["price"] = "-1"
    # Item 4 repeats the UPC of item 3 with another title and SKU.
    items[4] = product("R-3", title="Impostor", stockrecords=[product("X")["stockrecords"][0]])
    run = sync_run_execute(write_feed(items), batch_size=3)
    assert [(f.position, f.upc, f.duplicate_of) for f in run.failure_set.order_by("position")] == [
        (1, "R-1", None),
        (4, "R-3", 3),
    ]
    return run


def test_a_retry_leaves_in_feed_duplicates_alone(run_with_a_duplicate):
    retry = sync_run_retry(run_with_a_duplicate.pk)
    assert (retry.items, retry.failed, retry.updated, retry.created) == (1, 1, 0, 0)
    # Its failures line up with the first run's: the same feed positions.
    assert list(retry.failure_set.values_list("position", "upc")) == [(1, "R-1")]
    assert list(retry.batch_set.values_list("first_position", "last_position")) == [(1, 1)]
    survivor = Product.objects.get(upc="R-3")
    assert survivor.title == "Product R-3"
    assert list(survivor.stockrecords.values_list("partner_sku", flat=True)) == ["SKU-R-3"]
    assert any("1 item that failed as a duplicate" in note for note in retry.notes)


def test_a_retry_writes_duplicates_only_when_asked(run_with_a_duplicate):
    retry = sync_run_retry(run_with_a_duplicate.pk, duplicates=True)
    assert (retry.items, retry.failed, retry.updated) == (2, 1, 1)
    assert list(retry.failure_set.values_list("position", flat=True)) == [1]
    assert Product.objects.get(upc="R-3").title == "Impostor"
