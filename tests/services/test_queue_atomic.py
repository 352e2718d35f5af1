"""Queue runs are as atomic as local ones: a worker writes its batch and records it in one
transaction, then fetches the batch's images and sends batch_committed, as a local run."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from oscar.core.loading import get_model

from productsync.models import SyncBatch, SyncRun
from productsync.services import sync_batch_execute
from productsync.signals import batch_committed
from tests.conftest import product
from tests.services.test_fanout import queued_run
from tests.writer.test_images import image_server, png  # noqa: F401  (a fixture)

Product = get_model("catalogue", "Product")


@pytest.mark.django_db(transaction=True)
def test_queued_batches_fetch_images_and_send_batch_committed(image_server, tmp_path, settings):  # noqa: F811
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # The image server is on loopback, which images are refused from unless allow-listed.
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "IMAGE_ALLOW_PRIVATE": ["127.0.0.1"]}
    (image_server.root / "red.png").write_bytes(png("red"))
    items = [
        product(f"Q{i}", images=[f"{image_server.url}/{name}?upc=Q{i}"])
        for i, name in enumerate(["red.png"] * 5 + ["missing.png"])
    ]
    run = queued_run(items, 2)
    signals = []

    def committed(sender, run, batch, product_ids, **kwargs):
        signals.append((batch.number, sorted(product_ids)))

    batch_committed.connect(committed)
    try:
        for batch in run.batch_set.order_by("number"):
            assert sync_batch_execute(batch.pk).endswith(": succeeded")
    finally:
        batch_committed.disconnect(committed)

    run.refresh_from_db()
    assert (run.status, run.created, run.warnings) == ("succeeded", 6, 1)
    assert (
        "missing.png" in run.notes[0]
        and "not fetched (not available at that address)" in run.notes[0]
    )
    ids = dict(Product.objects.values_list("upc", "pk"))
    assert signals == [
        (n, sorted(ids[f"Q{i}"] for i in range(2 * n - 2, 2 * n))) for n in (1, 2, 3)
    ]
    assert [Product.objects.get(upc=f"Q{i}").images.count() for i in range(6)] == [1] * 5 + [0]
    # Each image was requested once its product's batch had committed.
    assert image_server.seen and all(committed for _, committed in image_server.seen)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_taken_over_mid_batch_undoes_the_batchs_writes():
    """The batch's record is in the transaction of its writes: a worker that finds, when it
    records, that another took its claim over, leaves nothing written."""
    run = queued_run([product(f"W{i}") for i in range(3)], 3)
    batch = run.batch_set.get()
    locked, outcome = threading.Event(), {}

    def worker() -> None:
        try:
            locked.wait(10)
            outcome["message"] = sync_batch_execute(batch.pk)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    with transaction.atomic():
        # Another process holds the run's row: the worker writes, then waits to record.
        SyncRun.objects.select_for_update().get(pk=run.pk)
        thread.start()
        locked.set()
        deadline = time.monotonic() + 30
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the worker never waited for the run's row")
        # Meanwhile the batch was taken for lost and claimed by another worker.
        SyncBatch.objects.filter(pk=batch.pk).update(claimed_by="another-worker")
    thread.join(30)
    assert "claim taken over; its writes undone" in outcome["message"]
    assert not Product.objects.exists()
    run.refresh_from_db()
    assert (run.items, run.batches) == (0, 0)
