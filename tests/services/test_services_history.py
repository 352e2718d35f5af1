"""Retrying a run's failed items, pruning old history, the KEEP_DAYS check, and the picture
of a run with many batches."""

import json
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.utils import timezone
from oscar.core.loading import get_model
from oscar.test.factories import create_product, create_stockrecord

from productsync.exceptions import ProductSyncError
from productsync.models import SyncBatch, SyncFailure, SyncRun
from productsync.report import MAX_BARS, run_picture
from productsync.services import sync_run_execute, sync_run_retry
from tests.conftest import product

pytestmark = pytest.mark.django_db
Product = get_model("catalogue", "Product")


def test_retry_runs_exactly_the_failed_items_once_the_cause_is_fixed(write_feed):
    # An item fails because its SKU belongs to another product; another is invalid.
    holder = create_product(upc="HOLDER")
    create_stockrecord(holder, partner_sku="SKU-SHARED", price=5, partner_name="Acme Books")
    partner = holder.stockrecords.get().partner.name
    items = [
        product("R-0"),
        product("R-1", stockrecords=[{"partner": partner, "partner_sku": "SKU-SHARED"}]),
        product("R-2"),
        {"upc": "R-3"},
    ]
    source = write_feed(items)
    original = sync_run_execute(source, batch_size=2)
    assert (original.created, original.failed) == (2, 2)

    holder.stockrecords.all().delete()  # the cause, fixed outside the feed
    retry = sync_run_retry(original.pk)

    assert retry.retry_of == original
    assert (retry.source, retry.batch_size, retry.trigger) == (source, 2, "admin")
    assert (retry.items, retry.total_items, retry.created, retry.failed) == (2, 2, 1, 1)
    assert retry.status == "completed_with_failures"
    assert Product.objects.get(upc="R-1").stockrecords.get().partner_sku == "SKU-SHARED"
    # Positions are those of the original feed, so the failures of both runs line up.
    failure = SyncFailure.objects.get(run=retry)
    assert (failure.position, failure.upc) == (3, "R-3")
    assert json.loads(failure.raw_payload) == {"upc": "R-3"}
    assert list(original.retries.all()) == [retry]
    assert retry.bytes_read > 0 and retry.bytes_total is None


def test_retry_keeps_text_that_was_not_json(write_feed):
    path = write_feed([product("J-0")], name="feed.jsonl")
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"upc": "J-1", broken\n')
    original = sync_run_execute(path)
    retry = sync_run_retry(original.pk)
    failure = SyncFailure.objects.get(run=retry)
    assert failure.raw_payload == '{"upc": "J-1", broken'
    assert "not valid JSON" in failure.message


def test_retry_of_a_dry_run_is_dry(write_feed):
    original = sync_run_execute(write_feed([{"upc": "D"}]), dry_run=True)
    assert sync_run_retry(original.pk).dry_run is True


def test_retry_is_refused_while_running_or_without_failures(write_feed):
    clean = sync_run_execute(write_feed([product("C")]))
    with pytest.raises(ProductSyncError, match="no failed items"):
        sync_run_retry(clean.pk)
    running = SyncRun.objects.create(source="/x.json", batch_size=5, failed=1)
    with pytest.raises(ProductSyncError, match="still running"):
        sync_run_retry(running.pk)


def test_retry_takes_the_lease_of_the_source(write_feed):
    source = write_feed([{"upc": "L"}])
    original = sync_run_execute(source)
    SyncRun.objects.create(source=source, batch_size=5)  # another run of the source is active
    with pytest.raises(ProductSyncError, match="still running"):
        sync_run_retry(original.pk)
    skipped = SyncRun.objects.get(status="skipped")
    assert skipped.retry_of == original


def _old_run(days: int, **fields) -> SyncRun:
    run = SyncRun.objects.create(
        source="/x.json",
        batch_size=1,
        status=fields.pop("status", "completed_with_failures"),
        started_at=timezone.now() - timedelta(days=days),
        **fields,
    )
    batch = SyncBatch.objects.create(
        run=run, number=1, first_position=0, last_position=0, status="failed"
    )
    SyncFailure.objects.create(run=run, batch=batch, position=0, message="m", raw_payload="{}")
    return run


def test_prune_deletes_finished_runs_older_than_keep_days(settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "KEEP_DAYS": 30}
    old = _old_run(31)
    old_running = _old_run(40, status="running")
    recent = _old_run(29, retry_of=old)
    out = call_command_out("productsync_prune")
    assert out == "Deleted 1 runs that started more than 30 days ago.\n"
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {old_running.pk, recent.pk}
    assert not SyncFailure.objects.filter(run_id=old.pk).exists()
    assert not SyncBatch.objects.filter(run_id=old.pk).exists()
    recent.refresh_from_db()
    assert recent.retry_of is None
    call_command_out("productsync_prune", "--days", "5")
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {old_running.pk}


def call_command_out(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_prune_needs_days_from_the_option_or_the_setting():
    with pytest.raises(CommandError, match="KEEP_DAYS"):
        call_command("productsync_prune")


@pytest.mark.parametrize("value", [0, -3, "30", True])
def test_keep_days_must_be_a_positive_integer(settings, value):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "KEEP_DAYS": value}
    assert "productsync.E011" in [e.id for e in run_checks()]


def test_keep_days_none_passes_the_checks(settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "KEEP_DAYS": None}
    assert "productsync.E011" not in [e.id for e in run_checks()]


def test_the_picture_of_a_long_run_groups_batches():
    run = SyncRun.objects.create(source="/x.json", batch_size=2, total_items=2 * 1200)
    SyncBatch.objects.bulk_create(
        SyncBatch(
            run=run,
            number=n + 1,
            first_position=2 * n,
            last_position=2 * n + 1,
            status="failed" if n == 700 else "succeeded",
            duration=5.0 if n == 300 else 0.1,
        )
        for n in range(1200)
    )
    bars = run_picture(run)
    assert len(bars) <= MAX_BARS
    assert bars[0].x == 0 and abs(bars[-1].x + bars[-1].width - 100) < 1e-9
    assert [b.status for b in bars].count("failed") == 1
    failed = next(b for b in bars if b.status == "failed")
    assert failed.first_batch <= 701 <= failed.last_batch
    tallest = max(bars, key=lambda b: b.height)
    assert tallest.first_batch <= 301 <= tallest.last_batch and tallest.height == pytest.approx(100)
