"""Runs that die or stall must leave a trace: a terminated run ends aborted and resumable."""

import json
import signal

import pytest
from oscar.core.loading import get_model

from productsync.models import SyncRun
from tests.conftest import product, run_command
from tests.guarantees.test_faults import (
    FAULT_SETTINGS,
    LARGE,
    assert_whole_batches,
    start_sync,
    wait_for_batch,
)

Product = get_model("catalogue", "Product")


@pytest.fixture
def large_feed(write_feed) -> str:
    return write_feed([product(f"K{i:05d}") for i in range(LARGE)], name="large.json")


@pytest.mark.django_db(transaction=True)
def test_sigterm_aborts_the_run_and_it_resumes(large_feed):
    process = start_sync(large_feed)
    wait_for_batch(process, 2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.strip() == (
        "CommandError: terminated (SIGTERM): the run is marked aborted; "
        "the batches committed before stay"
    )
    run = SyncRun.objects.get()
    assert (run.status, run.error) == (SyncRun.Status.ABORTED, "terminated (SIGTERM)")
    assert_whole_batches()

    # The lease is released at once: the next start resumes instead of being skipped.
    resumed = run_command("sync_products", "--resume", str(run.pk), "--json", env=FAULT_SETTINGS)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert Product.objects.count() == LARGE
    assert_whole_batches()
