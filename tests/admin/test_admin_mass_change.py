"""A preview the mass-change guard would stop says so, and offers no Confirm; the import
tool's "Allow a mass change" box lets a deliberate repricing through, confirm included."""

import pytest
from django.urls import reverse
from oscar.core.loading import get_model

from productsync.models import Feed, SyncRun
from productsync.services import sync_run_execute
from tests.admin.test_admin_import import jsonl, run_queued, upload, url
from tests.conftest import product

StockRecord = get_model("partner", "StockRecord")

pytestmark = pytest.mark.django_db
UPCS = ["chain-bracelet", *(f"ring-{i}" for i in range(1, 20))]


def priced(price) -> list[dict]:
    items = [product(upc) for upc in UPCS]
    for item in items:
        item["stockrecords"][0]["price"] = price
    return items


@pytest.fixture
def twenty(write_feed):
    run = sync_run_execute(write_feed(priced("39.99")))
    assert run.created == 20


def test_a_preview_the_guard_would_stop_says_so_before_confirm(runner, twenty):
    upload(runner, jsonl(priced(None)), batch_size="5")
    [preview_id] = run_queued()
    preview = SyncRun.objects.get(pk=preview_id)

    html = runner.get(url("change", preview.pk)).content.decode()

    assert preview.status == SyncRun.Status.FAILED
    assert (
        "price: 20 of 20 matched products would be cleared, e.g. chain-bracelet 39.99 -&gt; empty"
        in html
    )
    assert 'id="ps-confirm"' not in html
    assert "--allow" not in preview.error and "a run that allows a mass change" in preview.error
    assert {str(p) for p in StockRecord.objects.values_list("price", flat=True)} == {"39.99"}


def test_the_allow_box_lets_a_repricing_through_its_preview_and_its_confirm(runner, twenty):
    upload(runner, jsonl(priced("5.00")), batch_size="5", allow_mass_change="on")
    [preview_id] = run_queued()
    preview = SyncRun.objects.get(pk=preview_id)
    assert (preview.status, preview.updated, preview.allow_mass_change) == ("succeeded", 20, True)
    assert 'id="ps-confirm"' in runner.get(url("change", preview.pk)).content.decode()

    runner.post(url("confirm", preview.pk))
    [sync_id] = run_queued()

    sync = SyncRun.objects.get(pk=sync_id)
    assert (sync.status, sync.updated, sync.allow_mass_change) == ("succeeded", 20, True)
    assert {str(p) for p in StockRecord.objects.values_list("price", flat=True)} == {"5.00"}


def test_the_feed_form_sets_only_and_allow_mass_change(admin_client):
    data = {
        "name": "prices",
        "kind": "catalogue",
        "source": "/srv/prices.json",
        "enabled": "on",
        "only": "update",
        "allow_mass_change": "on",
    }

    response = admin_client.post(reverse("admin:productsync_feed_add"), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Feed.objects.values_list("only", "allow_mass_change").get() == ("update", True)
