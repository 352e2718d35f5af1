"""The error threshold: more failed items than --max-failures (or PRODUCTSYNC's
MAX_FAILURES) allows end the run failed, saying where; the committed batches stay."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from oscar.core.loading import get_model

from productsync.checks import check_settings
from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.conftest import product

Product = get_model("catalogue", "Product")

pytestmark = pytest.mark.django_db


def feed(write_feed) -> str:
    """Forty items: the first ten valid, every later one without a title."""
    items = [product(f"M{i}") for i in range(40)]
    for item in items[10:]:
        del item["title"]
    return write_feed(items)


@pytest.mark.parametrize("limit", ["10%", "5", 5])
def test_more_failures_than_the_limit_stop_the_run_failed(write_feed, limit):
    run = sync_run_execute(feed(write_feed), batch_size=10, max_failures=limit)

    assert run.status == SyncRun.Status.FAILED
    assert (run.items, run.created, run.failed) == (20, 10, 10)
    reason = f"stopped after item 19: 10 of 20 items failed, more than the failure limit ({limit})"
    assert run.error == reason
    assert reason in run.notes
    assert Product.objects.count() == 10  # the first batch, committed, stays


def test_failures_within_the_limit_let_the_run_finish(write_feed):
    run = sync_run_execute(feed(write_feed), batch_size=10, max_failures="75%")

    assert (run.status, run.items, run.failed) == (SyncRun.Status.COMPLETED_WITH_FAILURES, 40, 30)


def test_the_setting_limits_every_run_and_the_command_says_why(write_feed, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "MAX_FAILURES": "10%"}
    out = StringIO()

    with pytest.raises(SystemExit):
        call_command(
            "sync_products",
            "--source",
            feed(write_feed),
            "--batch-size",
            "10",
            "--no-progress",
            stdout=out,
        )

    assert "Error: stopped after item 19" in out.getvalue()
    assert SyncRun.objects.get().status == SyncRun.Status.FAILED


@pytest.mark.parametrize("limit", ["ten", "101%", "-1", "1.5"])
def test_a_bad_limit_is_refused_before_the_run(write_feed, limit):
    with pytest.raises(CommandError, match="failure limit"):
        call_command("sync_products", "--source", feed(write_feed), "--max-failures", limit)

    assert not SyncRun.objects.exists()


@pytest.mark.parametrize("value", ["ten", "101%", True, 1.5, -3])
def test_max_failures_must_be_a_count_or_a_percentage(settings, value):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "MAX_FAILURES": value}

    assert "productsync.E033" in {error.id for error in check_settings(None)}
