"""The admin as the import tool, through the test client: upload a feed, preview it item by item
with its changed fields, confirm it, and download the catalogue. Queued tasks are taken from
django-q2's ORM queue and run as a worker would run them (tests/e2e/test_admin_e2e.py drives a
real cluster)."""

import json
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from oscar.core.loading import get_model

from productsync.exceptions import SourceError
from productsync.models import SyncItem, SyncRun
from productsync.services import sync_run_execute
from productsync.services.upload import upload_dir
from tests.admin.test_admin import VIEW, staff
from tests.conftest import product, shared_data

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")


def url(name: str, *args) -> str:
    return reverse(f"admin:productsync_syncrun_{name}", args=args)


@pytest.fixture
def queue_unseen(settings, tmp_path):
    """Uploads in a private media folder; django-q2's status in a per-process cache, so the
    admin queues without seeing a cluster (the test runs the tasks)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CACHES = {
        **settings.CACHES,
        "productsync_q": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }


def run_queued() -> list:
    """Run every queued task as a django-q2 worker would; return their results."""
    results = []
    for queued in OrmQ.objects.order_by("pk"):
        task = queued.task
        queued.delete()
        results.append(import_string(task["func"])(*task["args"], **task["kwargs"]))
    return results


@pytest.fixture
def runner(client, django_user_model, queue_unseen):
    client.force_login(staff(django_user_model, "runner", *VIEW, "run_sync"))
    return client


def jsonl(items) -> bytes:
    return "".join(json.dumps(i) + "\n" for i in items).encode()


def second_feed() -> list[dict]:
    changed = product("A")
    changed["stockrecords"][0]["price"] = "12.50"
    bad = product("BAD")
    del bad["title"]
    return [changed, product("B"), product("N"), bad]


@pytest.fixture
def shop(write_feed):
    sync_run_execute(write_feed([product("A"), product("B")]))


def upload(client, content: bytes, action="preview", name="feed.jsonl", **fields):
    data = {"file": SimpleUploadedFile(name, content), "batch_size": "2", "action": action}
    return client.post(url("upload"), {**data, **fields})


def test_upload_preview_and_confirm(runner, shop):
    page = runner.get(url("upload"))
    assert page.status_code == 200 and 'type="file"' in page.content.decode()
    response = upload(runner, jsonl(second_feed()))
    assert response.status_code == 302
    [preview_id] = run_queued()
    preview = SyncRun.objects.get(pk=preview_id)
    assert (preview.dry_run, preview.trigger, preview.batch_size) == (True, "admin", 2)
    assert (preview.items, preview.created, preview.updated, preview.unchanged, preview.failed) == (
        4,
        1,
        1,
        1,
        1,
    )
    html = runner.get(url("change", preview.pk)).content.decode()
    assert '<del class="ps-old">&#x27;10.00&#x27;</del>' in html
    assert '<ins class="ps-new">&#x27;12.50&#x27;</ins>' in html
    assert 'id="ps-confirm"' in html
    updated = runner.get(url("change", preview.pk) + "?outcome=updated").content.decode()
    assert "stockrecords[Acme Books/SKU-A].price" in updated and ">N<" not in updated
    failed = runner.get(url("change", preview.pk) + "?outcome=failed").content.decode()
    assert "title: Field required" in failed
    # The uploaded file is kept with the run.
    download = runner.get(url("upload_file", preview.pk))
    assert b"".join(download.streaming_content) == jsonl(second_feed())
    assert str(Product.objects.get(upc="A").stockrecords.get().price) == "10.00"

    response = runner.post(url("confirm", preview.pk))
    assert response.status_code == 302
    [sync_id] = run_queued()
    sync = SyncRun.objects.get(pk=sync_id)
    assert (sync.dry_run, sync.preview_of_id, sync.updated, sync.created) == (
        False,
        preview.pk,
        1,
        1,
    )
    assert str(Product.objects.get(upc="A").stockrecords.get().price) == "12.50"
    changes = runner.get(url("change", sync.pk)).content.decode()
    assert '<ins class="ps-new">&#x27;12.50&#x27;</ins>' in changes


def test_an_upload_without_a_batch_size_takes_the_runs_default(runner, shop, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "BATCH_SIZE": 3, "PARTIAL_BATCH_SIZE": 700}
    page = runner.get(url("upload")).content.decode()
    assert "Empty: 3, or 700 for a partial feed" in page
    upload(runner, jsonl([product("A"), product("B")]), batch_size="")
    [full] = run_queued()
    stock = b"partner,sku,price,num_in_stock\nAcme Books,SKU-A,11.00,4\n"
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "PARTIAL": True}
    upload(runner, stock, name="stock.csv", batch_size="")
    [partial] = run_queued()
    full, partial = SyncRun.objects.get(pk=full), SyncRun.objects.get(pk=partial)
    assert (full.batch_size, full.partial, full.unchanged) == (3, False, 2)
    assert (partial.batch_size, partial.partial, partial.updated) == (700, True, 1)


def test_confirm_is_refused_when_the_file_changed_since_its_preview(runner, shop):
    upload(runner, jsonl(second_feed()))
    [preview_id] = run_queued()
    preview = SyncRun.objects.get(pk=preview_id)
    with open(preview.source, "ab") as feed:
        feed.write(jsonl([product("LATE")]))
    response = runner.post(url("confirm", preview.pk), follow=True)
    assert "changed since its preview" in response.content.decode()
    assert not OrmQ.objects.exists()


def test_upload_size_limit(runner, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "UPLOAD_MAX_BYTES": 100}
    response = upload(runner, jsonl([product(f"S-{i}") for i in range(5)]))
    assert response.status_code == 200
    assert "larger than the limit of 100 bytes" in response.content.decode()
    assert not OrmQ.objects.exists()


def test_upload_by_url_must_be_http(runner):
    response = runner.post(url("upload"), {"url": "file:///etc/passwd", "batch_size": "2"})
    assert "http" in response.content.decode() and not OrmQ.objects.exists()


def test_upload_needs_the_run_permission(client, django_user_model, queue_unseen):
    client.force_login(staff(django_user_model, "viewer", *VIEW))
    assert client.get(url("upload")).status_code == 403
    assert upload(client, jsonl([product("A")])).status_code == 403


def test_the_preview_is_paginated_and_filtered_with_constant_queries(runner, write_feed):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sync_run_execute(write_feed([product(f"P-{i}") for i in range(120)]), dry_run=True)
    run = SyncRun.objects.latest("pk")
    assert SyncItem.objects.filter(run=run).count() == 120
    with CaptureQueriesContext(connection) as first:
        html = runner.get(url("change", run.pk) + "?outcome=created").content.decode()
    assert "P-0" in html and "P-119" not in html
    with CaptureQueriesContext(connection) as last:
        html = runner.get(url("change", run.pk) + "?outcome=created&items=3").content.decode()
    assert "P-119" in html
    assert len(first) == len(last)


def test_the_catalogue_downloads_as_a_feed(runner, shop):
    response = runner.get(url("export") + "?format=jsonl")
    assert response["Content-Disposition"].startswith("attachment")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line)["upc"] for line in lines] == ["A", "B"]
    csv_text = b"".join(runner.get(url("export") + "?format=csv").streaming_content).decode()
    header, first_row = csv_text.splitlines()[:2]
    assert header.startswith("upc,barcode,title")
    # A product of a feed without barcodes has its key as UPC: the barcode cell repeats it.
    assert first_row.startswith("A,A,")


def test_prune_deletes_an_uploaded_file_with_the_last_run_that_read_it(runner, shop):
    import io
    from datetime import timedelta
    from pathlib import Path

    from django.core.management import call_command
    from django.utils import timezone

    upload(runner, jsonl(second_feed()))
    [preview_id] = run_queued()
    runner.post(url("confirm", preview_id))
    [sync_id] = run_queued()
    feed = Path(SyncRun.objects.get(pk=sync_id).source)
    assert feed.exists()
    old = timezone.now() - timedelta(days=40)
    SyncRun.objects.filter(pk=preview_id).update(started_at=old)
    call_command("productsync_prune", "--days", "30", stdout=io.StringIO())
    assert feed.exists()  # the sync that confirmed the preview still reads it
    SyncRun.objects.filter(pk=sync_id).update(started_at=old)
    call_command("productsync_prune", "--days", "30", stdout=io.StringIO())
    assert not feed.exists()


def test_a_csv_upload_in_our_columns_is_previewed(runner, shop):
    rows = [
        "upc,title,product_class,categories,partner,partner_sku,price,currency,num_in_stock",
        "A,Product A,Book,Books > Computing,Acme Books,SKU-A,11.00,GBP,5",
        "C,Product C,Book,Books > Computing,Acme Books,SKU-C,3.00,GBP,1",
    ]
    upload(runner, ("\n".join(rows) + "\n").encode(), name="shop.csv", format="csv")
    [run_id] = run_queued()
    run = SyncRun.objects.get(pk=run_id)
    assert (run.items, run.created, run.updated, run.failed) == (2, 1, 1, 0)
    assert run.feed_options == {"format": "csv"}
    changes = SyncItem.objects.get(run=run, upc="A").changes
    assert ["stockrecords[Acme Books/SKU-A].price", "10.00", "11.00"] in changes


def test_a_url_is_fetched_into_storage_previewed_and_confirmed(runner, shop, http_server, settings):
    httpd = http_server()
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "ALLOW_PRIVATE": ["127.0.0.1"]}
    httpd.files["/feed.jsonl"] = (jsonl(second_feed()), "application/x-ndjson")
    response = runner.post(
        url("upload"),
        {"url": httpd.url + "/feed.jsonl", "batch_size": "2", "action": "preview"},
    )
    assert response.status_code == 302
    [preview_id] = run_queued()
    preview = SyncRun.objects.get(pk=preview_id)
    assert (preview.upload_name, preview.items, preview.updated) == ("feed.jsonl", 4, 1)
    with open(preview.source, "rb") as stored:
        assert stored.read() == jsonl(second_feed())
    httpd.files["/feed.jsonl"] = (jsonl([product("CHANGED")]), "application/x-ndjson")
    runner.post(url("confirm", preview.pk))
    [sync_id] = run_queued()
    sync = SyncRun.objects.get(pk=sync_id)
    assert (sync.items, sync.updated, sync.created) == (4, 1, 1)  # the previewed file's
    assert httpd.hits["/feed.jsonl"] == 1


def test_a_fetched_url_is_bounded_by_the_upload_limit(runner, http_server, settings):
    httpd = http_server()
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "UPLOAD_MAX_BYTES": 100,
        "ALLOW_PRIVATE": ["127.0.0.1"],
    }
    httpd.files["/big.jsonl"] = (jsonl([product(f"B-{i}") for i in range(5)]), "text/plain")
    form = {"url": httpd.url + "/big.jsonl", "batch_size": "2", "action": "preview"}
    assert runner.post(url("upload"), form).status_code == 302
    with pytest.raises(SourceError, match="larger than the limit of 100 bytes"):
        run_queued()
    assert not SyncRun.objects.exists()
    assert not list(Path(upload_dir()).rglob("*.jsonl"))  # nothing left


def test_a_url_import_reaches_loopback_only_through_allow_private(runner, http_server):
    httpd = http_server()
    httpd.files["/secret.jsonl"] = (jsonl([product("S-1")]), "application/x-ndjson")
    form = {"url": httpd.url + "/secret.jsonl", "action": "preview"}
    assert runner.post(url("upload"), form).status_code == 302
    with pytest.raises(SourceError, match="not a public address"):
        run_queued()
    assert httpd.hits["/secret.jsonl"] == 0


def test_without_a_cluster_the_message_shows_the_command_as_code(client, django_user_model):
    client.force_login(staff(django_user_model, "runner", *VIEW, "run_sync"))
    response = client.post(url("start"), follow=True)
    html = response.content.decode()
    assert "start one with <code>python manage.py qcluster</code>" in html
    assert "`" not in html.split('id="content-main"')[0].split("messagelist")[-1]


def test_run_pages_name_what_they_show(runner, write_feed, tmp_path):
    sync_run_execute(write_feed([product(f"D-{i}") for i in range(3)]), batch_size=2)
    batches = runner.get(reverse("admin:productsync_syncbatch_changelist")).content.decode()
    durations = re.findall(r'<td class="field-duration_shown">([^<]*)</td>', batches)
    assert len(durations) == 2 and all(re.fullmatch(r"\d\.\d\d s", d) for d in durations)
    runs = runner.get(url("changelist")).content.decode()
    assert '<span title="' in runs and ">feed.json</span>" in runs  # the file, the path on hover
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(SourceError):
        sync_run_execute(str(empty))
    run = SyncRun.objects.latest("pk")
    html = runner.get(url("change", run.pk)).content.decode()
    assert "No batch: the run ended before it read an item" in html
    assert "batches with failed items" in html


def test_a_shopify_export_is_previewed_with_its_preset(runner, settings):
    # Images are not fetched: the export names Shopify's CDN.
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "FETCH_IMAGES": False}
    export = shared_data("shopify", "product_template.csv")
    upload(runner, export.read_bytes(), name="products_export.csv", preset="shopify")
    [preview_id] = run_queued()
    preview = SyncRun.objects.get(pk=preview_id)
    assert preview.feed_options == {"preset": "shopify"}
    # The export's 3 products, by Handle; nothing is written by a preview.
    assert (preview.dry_run, preview.items, preview.created, preview.failed) == (True, 3, 3, 0)
    assert set(
        SyncItem.objects.filter(run=preview, outcome="created").values_list("upc", flat=True)
    ) == {
        "example-hat",
        "example-pants",
        "example-shirt",
    }
    assert not Product.objects.exists()


def test_a_mapping_and_a_preset_together_are_refused(runner):
    response = upload(
        runner,
        b"Handle,Title\n",
        name="products_export.csv",
        preset="shopify",
        mapping=SimpleUploadedFile("m.toml", b"[fields]\n"),
    )
    assert response.status_code == 200
    assert "Give a mapping file or a preset, not both." in response.content.decode()
    assert not OrmQ.objects.exists()
