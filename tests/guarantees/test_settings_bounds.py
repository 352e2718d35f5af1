"""Settings that pass the checks never overflow where they are used: the largest accepted
value of each works, one more is refused by `check` with the bound named."""

import json

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from productsync.conf import LIMITS
from productsync.models import SyncRun
from productsync.services import sync_run_abort_stale, sync_run_execute
from tests.conftest import product, run_command
from tests.guarantees.test_faults import FAULT_SETTINGS


def check_ids(settings, **values) -> list[str]:
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, **values}
    return [error.id for error in run_checks() if error.id.startswith("productsync.")]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("STALE_AFTER", 10**12),
        ("LOCK_TIMEOUT", 3_000_000),
        ("HTTP_TIMEOUT", [1, 1e300]),
        ("HTTP_TIMEOUT", (float("inf"), 5)),
        ("IMAGE_TIMEOUT", 10**30),
        ("KEEP_DAYS", 10**9),
        ("HTTP_RETRIES", 10**12),
        ("MAX_ITEM_BYTES", 2**40),
        ("MAX_ITEM_BYTES", 100),
        ("MAX_TEXT_LENGTH", 10),
    ],
)
def test_values_that_would_overflow_are_refused(settings, key, value):
    ids = check_ids(settings, **{key: value})
    assert ids, f"{key}={value!r} passed the checks"


def test_the_bounds_are_named(settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "STALE_AFTER": 10**12}
    [error] = [e for e in run_checks() if e.id.startswith("productsync.")]
    assert error.msg == (
        f"PRODUCTSYNC['STALE_AFTER'] must be a whole number from 1 to {LIMITS['STALE_AFTER']}."
    )


@pytest.mark.django_db(transaction=True)
def test_the_largest_accepted_values_work_where_they_are_used(settings, write_feed):
    largest = {key: LIMITS[key] for key in ("STALE_AFTER", "LOCK_TIMEOUT", "KEEP_DAYS")}
    assert check_ids(settings, **largest, HTTP_TIMEOUT=(LIMITS["HTTP_TIMEOUT"],) * 2) == []
    SyncRun.objects.create(source="/x", batch_size=1, heartbeat_at=timezone.now())
    assert sync_run_abort_stale() == 0  # the cutoff is computed, not an OverflowError
    run = sync_run_execute(write_feed([product("A")]))  # sets the lock timeout
    assert run.status == "succeeded"
    from productsync.services import sync_run_prune

    assert sync_run_prune(LIMITS["KEEP_DAYS"]) == 0


@pytest.mark.django_db(transaction=True)
def test_the_command_refuses_to_start_with_one_line(write_feed):
    result = run_command(
        *("sync_products", "--source", write_feed([product("A")])),
        env={**FAULT_SETTINGS, "PRODUCTSYNC_OVERRIDES": json.dumps({"LOCK_TIMEOUT": 3_000_000})},
    )
    assert result.returncode != 0
    assert "PRODUCTSYNC['LOCK_TIMEOUT'] must be a whole number from 1 to" in result.stderr
    assert "Traceback" not in result.stderr
    assert not SyncRun.objects.exists()
