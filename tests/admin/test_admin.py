"""The run history admin through the Django test client: pages, actions, permissions, query
counts and escaping. Runs are made by the real sync service on real feed files."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ, Task
from oscar.test.factories import create_product, create_stockrecord

from productsync.exports import CSV_FIELDS
from productsync.models import SyncBatch, SyncFailure, SyncRun
from productsync.services import sync_queue_state, sync_run_execute
from tests.conftest import product

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('x')</script>"


def url(name: str, *args) -> str:
    return reverse(f"admin:productsync_syncrun_{name}", args=args)


def staff(django_user_model, username: str, *codenames: str):
    user = django_user_model.objects.create_user(
        username=username, email=f"{username}@example.com", password=None, is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="productsync", codename__in=codenames)
    )
    return user


VIEW = ("view_syncrun", "view_syncbatch", "view_syncfailure")


@pytest.fixture
def viewer(client, django_user_model) -> Client:
    client.force_login(staff(django_user_model, "viewer", *VIEW))
    return client


@pytest.fixture
def runner(client, django_user_model) -> Client:
    client.force_login(staff(django_user_model, "runner", *VIEW, "run_sync"))
    return client


@pytest.fixture
def mixed_run(write_feed) -> SyncRun:
    """A run of 7 items in batches of 3: two invalid items (one with a script title), one
    valid item with a script title."""
    items = [product(f"M-{i}") for i in range(7)]
    items[1] = product("M-1", title=SCRIPT, stockrecords=[{"partner": "P", "partner_sku": "S"}])
    items[1]["stockrecords"][0]["price"] = "-1"
    del items[4]["title"]
    items[5]["title"] = f"Fine {SCRIPT}"
    return sync_run_execute(write_feed(items), batch_size=3)


def test_the_list_shows_runs_with_badges_and_counts(viewer, mixed_run):
    response = viewer.get(url("changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        '<span class="ps-badge ps-completed_with_failures">completed with failures</span>' in html
    )
    row = re.search(r"<tr[^>]*>.*?field-id.*?</tr>", html, re.S).group(0)
    cells = re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', row, re.S)
    values = dict(cells)
    assert values["items"] == "7"
    assert values["created"] == "5"
    assert values["failed"] == "2"
    assert '<small class="ps-kind">catalogue</small>' in values["status_badge"]
    assert "productsync/admin.css" in html


def test_the_list_filters_and_searches(viewer, write_feed):
    ok = sync_run_execute(write_feed([product("A")], name="alpha.json"), batch_size=5)
    bad = sync_run_execute(write_feed([{"upc": "B"}], name="beta.json"), batch_size=5)
    dry = sync_run_execute(
        write_feed([product("C")], name="gamma.json"), batch_size=5, dry_run=True
    )

    def ids(query: str) -> set[int]:
        html = viewer.get(url("changelist") + query).content.decode()
        return {int(i) for i in re.findall(r'href="/admin/productsync/syncrun/(\d+)/change/', html)}

    assert ids("") == {ok.pk, bad.pk, dry.pk}
    assert ids("?status__exact=completed_with_failures") == {bad.pk}
    assert ids("?dry_run__exact=1") == {dry.pk}
    assert ids("?trigger__exact=command") == {ok.pk, bad.pk, dry.pk}
    assert ids("?trigger__exact=admin") == set()
    assert ids("?q=beta") == {bad.pk}
    assert ok.pk in ids(f"?q={ok.pk}")  # the run id, or a source with that number in it
    assert ids("?q=987654321") == set()
    today = timezone.now()
    assert ids(f"?started_at__year={today.year}&started_at__month={today.month}") == {
        ok.pk,
        bad.pk,
        dry.pk,
    }
    assert ids(f"?started_at__year={today.year - 1}") == set()


def _make_runs(n: int) -> None:
    SyncRun.objects.bulk_create(
        SyncRun(source=f"/feeds/{i}.json", batch_size=10, status="succeeded", items=i)
        for i in range(n)
    )


def test_the_list_query_count_does_not_grow_with_runs(viewer):
    _make_runs(2)
    with CaptureQueriesContext(connection) as few:
        assert viewer.get(url("changelist")).status_code == 200
    _make_runs(60)
    retried = SyncRun.objects.first()
    SyncRun.objects.filter(pk__gt=retried.pk).update(retry_of=retried)
    with CaptureQueriesContext(connection) as many:
        assert viewer.get(url("changelist")).status_code == 200
    assert len(many) == len(few)


def test_the_run_page_shows_summary_picture_batches_and_failures(viewer, mixed_run):
    response = viewer.get(url("change", mixed_run.pk))
    assert response.status_code == 200
    html = response.content.decode()
    # The picture: one bar per batch, coloured by outcome, linking to the batch row.
    bars = re.findall(r'<a href="\?batches=1#batch-(\d)"><rect class="ps-bar-(\w+)"', html)
    assert bars == [("1", "partial"), ("2", "partial"), ("3", "succeeded")]
    assert 'id="batch-3"' in html
    # The failures table, with the raw payload kept and escaped.
    assert 'id="failure-1"' in html and 'id="failure-4"' in html
    assert "stockrecords[0].price" in html
    # Progress of a finished run is complete and nothing polls.
    assert "7 / 7 items (100%)" in html
    assert "data-url=" not in html
    assert "<script>" not in html.split('id="content-main"')[1]
    # Downloads and (without the permission) no retry button.
    assert url("failures_jsonl", mixed_run.pk) in html
    assert 'id="ps-retry"' not in html


def test_feed_text_is_escaped_on_every_page(viewer, mixed_run, write_feed):
    odd_source = write_feed([product("Z", title=SCRIPT)], name="<img src=x onerror=alert(1)>.json")
    odd = sync_run_execute(odd_source, batch_size=5)
    pages = [
        url("changelist"),
        url("change", mixed_run.pk),
        url("change", odd.pk),
        reverse("admin:productsync_syncfailure_changelist"),
        reverse("admin:productsync_syncfailure_change", args=[mixed_run.failure_set.first().pk]),
        reverse("admin:productsync_syncbatch_changelist"),
    ]
    for page in pages:
        html = viewer.get(page).content.decode()
        assert "<script>alert" not in html, page
        assert "<img src=x" not in html, page
    run_page = viewer.get(url("change", mixed_run.pk)).content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in run_page
    progress = viewer.get(url("progress", mixed_run.pk)).json()
    assert "<script>" not in progress["picture"]


def test_failures_and_batches_are_paginated_with_constant_queries(viewer, write_feed):
    small = sync_run_execute(write_feed([{"upc": "x"}] * 3, name="small.json"), batch_size=1)
    big = sync_run_execute(write_feed([{"upc": "x"}] * 120, name="big.json"), batch_size=2)
    assert big.failed == 120 and big.batches == 60
    with CaptureQueriesContext(connection) as few:
        viewer.get(url("change", small.pk))
    with CaptureQueriesContext(connection) as many:
        page1 = viewer.get(url("change", big.pk)).content.decode()
    assert len(many) == len(few)
    assert page1.count('<tr id="failure-') == 50
    assert page1.count('<tr id="batch-') == 50
    assert "page 1 of 3 (120 in all)" in page1
    page3 = viewer.get(url("change", big.pk) + "?failures=3").content.decode()
    assert page3.count('<tr id="failure-') == 20
    assert 'id="failure-119"' in page3
    # A failure links to its batch on the batches page that holds it.
    assert '<a href="?batches=2#batch-60">60</a>' in page3


def test_failure_and_batch_rows_link_to_the_product_in_the_dashboard(viewer, write_feed):
    existing = create_product(upc="TAKEN", title="Already here")
    create_stockrecord(existing, partner_sku="SKU-1", price=5, partner_name="Acme Books")
    partner = existing.stockrecords.get().partner.name
    clash = product("NEW-1", stockrecords=[{"partner": partner, "partner_sku": "SKU-1"}])
    bad_existing = product("TAKEN", title="")
    run = sync_run_execute(write_feed([product("OK-1"), clash, bad_existing]), batch_size=5)
    assert run.failed == 2
    messages = set(run.failure_set.values_list("message", flat=True))
    assert any("belongs to" in m or "SKU-1" in m for m in messages), messages
    html = viewer.get(url("change", run.pk)).content.decode()
    taken = reverse("dashboard:catalogue-product", kwargs={"pk": existing.pk})
    assert f'<a href="{taken}" title="This product in the dashboard">TAKEN</a>' in html
    assert 'title="This product in the dashboard">NEW-1' not in html  # no such product
    created = reverse("dashboard:catalogue-product", kwargs={"pk": run_product_pk("OK-1")})
    assert f'<a href="{created}">OK-1</a>' in html


def run_product_pk(upc: str) -> int:
    from oscar.core.loading import get_model

    return get_model("catalogue", "Product").objects.get(upc=upc).pk


def test_progress_json_of_a_running_run(viewer):
    now = timezone.now()
    run = SyncRun.objects.create(
        source="/feeds/x.json",
        batch_size=10,
        items=30,
        created=30,
        batches=3,
        total_items=100,
        started_at=now - timedelta(seconds=10),
        heartbeat_at=now,
    )
    for number in (1, 2, 3):
        first = (number - 1) * 10
        SyncBatch.objects.create(
            run=run,
            number=number,
            first_position=first,
            last_position=first + 9,
            status="succeeded",
            duration=1,
        )
    page = viewer.get(url("change", run.pk)).content.decode()
    assert f'data-url="{url("progress", run.pk)}"' in page
    assert "<script>" in page
    data = viewer.get(url("progress", run.pk)).json()
    assert data["running"] is True
    assert data["unit"] == "items" and data["done"] == 30 and data["total"] == 100
    assert data["text"]["done"] == "30 / 100 items (30%)"
    # The rate over the batches' own 3 s; the ETA over the 10 s the run has taken so far.
    assert data["text"]["rate"] == "10.0 items/s"
    assert 20 <= data["eta"] <= 24
    assert data["text"]["created"] == "30"
    assert data["picture"].count("<rect") == 3


def test_progress_by_bytes_when_the_item_total_is_unknown(viewer):
    now = timezone.now()
    run = SyncRun.objects.create(
        source="/feeds/x.json",
        batch_size=10,
        items=40,
        bytes_read=512 * 1024,
        bytes_total=2048 * 1024,
        started_at=now - timedelta(seconds=4),
        heartbeat_at=now,
    )
    data = viewer.get(url("progress", run.pk)).json()
    assert data["unit"] == "bytes"
    assert data["text"]["done"] == "512.0 KB / 2.0 MB (25%)"
    assert data["text"]["rate"] == "128.0 KB/s"


def test_failures_download_as_jsonl_resubmits_the_same_items(viewer, mixed_run, write_feed):
    response = viewer.get(url("failures_jsonl", mixed_run.pk))
    assert response["Content-Disposition"] == (
        f'attachment; filename="run-{mixed_run.pk}-failures.jsonl"'
    )
    body = b"".join(response.streaming_content).decode()
    lines = body.splitlines()
    assert [json.loads(line)["upc"] for line in lines] == ["M-1", "M-4"]
    assert json.loads(lines[0])["title"] == SCRIPT
    again = sync_run_execute(write_feed([json.loads(line) for line in lines], "again.jsonl"))
    assert (again.items, again.failed) == (2, 2)


def test_failures_download_as_csv_in_the_feed_columns(viewer, mixed_run):
    response = viewer.get(url("failures_csv", mixed_run.pk))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [r["upc"] for r in rows] == ["M-1", "M-4"]
    assert rows[0]["title"] == SCRIPT
    assert rows[0]["price"] == "-1" and rows[0]["partner_sku"] == "S"
    assert rows[1]["categories"] == "Books > Computing"
    assert rows[1]["title"] == ""


def test_anonymous_users_are_sent_to_the_login_page(client, mixed_run):
    for page in [
        url("changelist"),
        url("change", mixed_run.pk),
        url("progress", mixed_run.pk),
        url("failures_jsonl", mixed_run.pk),
        url("failures_csv", mixed_run.pk),
    ]:
        response = client.get(page)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], page
    assert client.post(url("start")).status_code == 302
    assert OrmQ.objects.count() == 0


def test_staff_without_the_view_permission_are_refused(client, django_user_model, mixed_run):
    client.force_login(staff(django_user_model, "nobody"))
    for page in [
        url("changelist"),
        url("change", mixed_run.pk),
        url("progress", mixed_run.pk),
        url("failures_jsonl", mixed_run.pk),
        url("failures_csv", mixed_run.pk),
        url("queued", "abc") + "?run=00000000000000000000000000000000",
    ]:
        assert client.get(page).status_code == 403, page


def test_viewers_cannot_start_retry_or_edit(viewer, mixed_run):
    html = viewer.get(url("changelist")).content.decode()
    assert "Run sync now" not in html
    assert viewer.post(url("start")).status_code == 403
    assert viewer.post(url("retry", mixed_run.pk)).status_code == 403
    assert viewer.get(url("add")).status_code == 403
    assert viewer.post(url("delete", mixed_run.pk)).status_code == 403
    assert viewer.post(url("change", mixed_run.pk), {"status": "failed"}).status_code == 403
    mixed_run.refresh_from_db()
    assert mixed_run.status == "completed_with_failures"
    assert OrmQ.objects.count() == 0


def test_actions_are_post_only(runner, mixed_run):
    assert runner.get(url("start")).status_code == 405
    assert runner.get(url("retry", mixed_run.pk)).status_code == 405


def test_run_sync_now_without_a_cluster_says_so(runner):
    assert sync_queue_state() == "stopped"
    html = runner.get(url("changelist")).content.decode()
    assert 'id="ps-run-now"' in html
    assert "No django-q2 cluster is running" in html
    response = runner.post(url("start"), follow=True)
    assert response.redirect_chain[-1][0] == url("changelist")
    assert "Not started: no django-q2 cluster is running" in response.content.decode()
    assert OrmQ.objects.count() == 0
    assert not SyncRun.objects.exists()


def test_retry_without_a_cluster_says_so(runner, mixed_run):
    html = runner.get(url("change", mixed_run.pk)).content.decode()
    assert 'id="ps-retry"' in html
    response = runner.post(url("retry", mixed_run.pk), follow=True)
    assert "Not retried: no django-q2 cluster is running" in response.content.decode()
    assert OrmQ.objects.count() == 0


def test_retry_is_refused_for_a_run_without_failures(runner, write_feed):
    run = sync_run_execute(write_feed([product("A")]))
    html = runner.get(url("change", run.pk)).content.decode()
    assert 'id="ps-retry"' not in html
    response = runner.post(url("retry", run.pk), follow=True)
    assert "Only a finished run with failed items can be retried" in response.content.decode()


def test_posts_need_a_csrf_token(django_user_model, mixed_run):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff(django_user_model, "runner", *VIEW, "run_sync"))
    assert client.post(url("start")).status_code == 403
    assert client.post(url("retry", mixed_run.pk)).status_code == 403
    page = client.get(url("change", mixed_run.pk)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url("retry", mixed_run.pk), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302  # accepted: refused for want of a cluster, not a token


def test_the_queued_page_follows_the_task_to_its_run(viewer):
    SyncRun.objects.create(source="/a.json", batch_size=5, status="succeeded")
    key = "?run=" + "1" * 32
    page = viewer.get(url("queued", "t1") + key)
    assert page.status_code == 200
    assert "Waiting for a worker" in page.content.decode()
    status = url("queued_status", "t1") + key
    assert viewer.get(status).json() == {"run_url": None, "error": ""}
    # Another admin's run, started meanwhile, is not this task's.
    SyncRun.objects.create(source="/b.json", batch_size=5, trigger="admin", queued_as="2" * 32)
    assert viewer.get(status).json()["run_url"] is None
    run = SyncRun.objects.create(
        source="/a.json", batch_size=5, trigger="admin", queued_as="1" * 32
    )
    assert viewer.get(status).json()["run_url"] == url("change", run.pk)
    response = viewer.get(url("queued", "t1") + key)
    assert response["Location"] == url("change", run.pk)


def test_read_only_history_of_batches_and_failures(viewer, mixed_run):
    failure = SyncFailure.objects.filter(run=mixed_run).first()
    assert viewer.get(reverse("admin:productsync_syncfailure_add")).status_code == 403
    delete = reverse("admin:productsync_syncfailure_delete", args=[failure.pk])
    assert viewer.post(delete, {"post": "yes"}).status_code == 403
    assert SyncFailure.objects.filter(pk=failure.pk).exists()


def test_the_queued_page_shows_why_a_task_failed_before_recording_a_run(viewer):
    now = timezone.now()
    Task.objects.create(
        id="t2",
        name="productsync sync from the admin",
        func="productsync.tasks.sync_products",
        started=now,
        stopped=now,
        success=False,
        result="SourceError: no source given and PRODUCTSYNC['SOURCE'] is not set <b>",
    )
    html = viewer.get(url("queued", "t2") + "?run=" + "3" * 32).content.decode()
    assert "failed before it could record a run: SourceError: no source given" in html
    assert "&lt;b&gt;" in html and "<b>" not in html.split('id="content-main"')[1]
    status = viewer.get(url("queued_status", "t2") + "?run=" + "3" * 32).json()
    assert status["error"].startswith("SourceError") and status["run_url"] is None


def test_run_sync_now_queues_when_the_cluster_cannot_be_seen(runner, settings):
    # A per-process cache for django-q2's status: nobody can tell whether a cluster runs.
    settings.CACHES = {
        **settings.CACHES,
        "productsync_q": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SOURCE": "/feeds/shop.json", "BATCH_SIZE": 7}
    assert sync_queue_state() == "unknown"
    html = runner.get(url("changelist")).content.decode()
    assert "cannot tell whether a django-q2 cluster is running" in html
    response = runner.post(url("start"), {"dry_run": "on"}, follow=True)
    assert "this server cannot tell whether a django-q2 cluster is running" in (
        response.content.decode()
    )
    assert "Waiting for a worker" in response.content.decode()
    task = OrmQ.objects.get().task
    assert task["func"] == "productsync.tasks.sync_products"
    # No batch size of its own: the task's run decides it as the command does.
    assert task["args"] == ("/feeds/shop.json",)
    queued_as = response.redirect_chain[-1][0].split("?run=")[1]
    assert task["kwargs"] == {"dry_run": True, "trigger": "admin", "queued_as": queued_as}
