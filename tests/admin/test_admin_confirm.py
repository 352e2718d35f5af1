"""Confirming a preview syncs what the preview showed, or nothing: not after its mapping
changed, and not a preview that stopped early."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_q.models import OrmQ
from oscar.core.loading import get_model

from productsync.models import SyncRun
from tests.admin.test_admin_import import (  # noqa: F401
    queue_unseen,
    run_queued,
    runner,
    upload,
    url,
)

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")

FEED = b"EAN,Name,Amount\nM1,Mapped hat,19.50\n"
MAPPING = (
    'format = "csv"\n[fields]\nupc = "EAN"\ntitle = "Name"\nprice = "Amount"\n'
    'partner = { value = "Acme Books" }\npartner_sku = "EAN"\nnum_in_stock = { value = "3" }\n'
    'product_class = { value = "Books" }\n'
)


def preview_with_mapping(client) -> SyncRun:
    mapping = SimpleUploadedFile("shop.toml", MAPPING.encode())
    assert upload(client, FEED, name="shop.csv", mapping=mapping).status_code == 302
    [preview_id] = run_queued()
    preview = SyncRun.objects.get(pk=preview_id)
    assert (preview.status, preview.created) == (SyncRun.Status.SUCCEEDED, 1), preview.error
    return preview


def test_confirm_after_the_mapping_changed_is_refused(runner):  # noqa: F811
    preview = preview_with_mapping(runner)
    # Someone edits the stored mapping after the preview: the price becomes a constant.
    with open(preview.feed_options["mapping"], "w", encoding="utf-8") as mapping:
        mapping.write(MAPPING.replace('price = "Amount"', 'price = { value = "0.01" }'))

    page = runner.post(url("confirm", preview.pk), follow=True).content.decode()

    assert "Not synced: the mapping file changed since the preview" in page
    assert "preview the feed again" in page
    assert not OrmQ.objects.exists()
    assert not Product.objects.exists()


def test_confirm_with_the_mapping_unchanged_syncs_what_the_preview_showed(runner):  # noqa: F811
    preview = preview_with_mapping(runner)
    runner.post(url("confirm", preview.pk))
    [sync_id] = run_queued()
    sync = SyncRun.objects.get(pk=sync_id)
    assert (sync.status, sync.created, sync.preview_of_id) == ("succeeded", 1, preview.pk)
    assert str(Product.objects.get(upc="M1").stockrecords.get().price) == "19.50"


def test_an_aborted_preview_cannot_be_confirmed(runner):  # noqa: F811
    preview = preview_with_mapping(runner)
    # Stopped before it read the whole feed (Ctrl-C, SIGTERM, taken for dead).
    SyncRun.objects.filter(pk=preview.pk).update(status=SyncRun.Status.ABORTED)

    page = runner.post(url("confirm", preview.pk), follow=True).content.decode()

    assert f"Not synced: run {preview.pk} is aborted: only a finished preview is confirmed" in page
    assert not OrmQ.objects.exists()
    assert not Product.objects.exists()
