"""The admin's upload page takes XML (a Google Merchant Center feed) and Excel workbooks,
with a workbook's sheet by name."""

import openpyxl
import pytest
from oscar.core.loading import get_model

from productsync.models import SyncRun
from tests.admin.test_admin_import import queue_unseen, run_queued, runner, upload  # noqa: F401
from tests.catalogue import demo_csv_rows
from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")


@pytest.fixture(autouse=True)
def no_image_fetching(settings):
    settings.PRODUCTSYNC = {**getattr(settings, "PRODUCTSYNC", {}), "FETCH_IMAGES": False}


def test_a_google_feed_is_previewed_and_told_by_its_namespace(runner):  # noqa: F811
    feed = (FIXTURES / "google" / "rss-apparel-with-variants.xml").read_bytes()

    upload(runner, feed, name="products.xml")

    [preview_id] = run_queued()
    preview = SyncRun.objects.get(pk=preview_id)
    assert (preview.dry_run, preview.items, preview.created, preview.failed) == (True, 4, 4, 0)
    assert "mapping: the google preset, detected from the feed's namespace" in preview.notes
    assert not Product.objects.exists()


def test_a_workbooks_named_sheet_is_synced(runner, tmp_path):  # noqa: F811
    book = openpyxl.Workbook()
    book.active.title = "Read me"
    sheet = book.create_sheet("Products")
    for row in demo_csv_rows()[:4]:
        sheet.append(row)
    book.save(tmp_path / "catalogue.xlsx")

    upload(
        runner,
        (tmp_path / "catalogue.xlsx").read_bytes(),
        action="sync",
        name="catalogue.xlsx",
        sheet="Products",
    )

    [run_id] = run_queued()
    run = SyncRun.objects.get(pk=run_id)
    assert (run.status, run.created, run.feed_options) == ("succeeded", 3, {"sheet": "Products"})
    assert Product.objects.count() == 3
