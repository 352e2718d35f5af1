"""Queue runs: batches fanned out to django-q2 workers, claimed once, re-run when lost."""

import os
import signal
from collections import defaultdict
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from oscar.core.loading import get_model

from productsync.models import SyncBatch, SyncRun
from productsync.services import sync_batch_execute
from productsync.services.planner import _batches_requeue_stale
from tests.conftest import (
    product,
    qcluster,
    run_command,
    spawn_command,
    stop_group,
    wait_for,
)

Category = get_model("catalogue", "Category")
Product = get_model("catalogue", "Product")
ProductCategory = get_model("catalogue", "ProductCategory")
StockRecord = get_model("partner", "StockRecord")


def queued_run(items: list[dict], batch_size: int, **batch_fields) -> SyncRun:
    """A planned queue run, as its planner leaves it: every batch pending with its items."""
    run = SyncRun.objects.create(
        source="feed.json", batch_size=batch_size, workers="queue", total_items=len(items)
    )
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    for number, chunk in enumerate(chunks, start=1):
        first = (number - 1) * batch_size
        SyncBatch.objects.create(
            run=run,
            number=number,
            first_position=first,
            last_position=first + len(chunk) - 1,
            status="pending",
            items=len(chunk),
            payload=[[first + i, item] for i, item in enumerate(chunk)],
            finished_at=None,
            heartbeat_at=timezone.now(),
            **batch_fields,
        )
    run.planned_batches = len(chunks)
    run.save()
    return run


def test_a_batch_delivered_twice_is_written_once(db):
    run = queued_run([product(f"D-{i}") for i in range(20)], 10)
    first, second = run.batch_set.order_by("number")
    assert sync_batch_execute(first.pk) == f"run {run.pk} batch 1: succeeded"
    assert sync_batch_execute(first.pk) == f"batch {first.pk}: already claimed"
    run.refresh_from_db()
    assert (run.status, run.items, run.batches) == ("running", 10, 1)
    sync_batch_execute(second.pk)
    run.refresh_from_db()
    assert (run.status, run.items, run.created, run.batches) == ("succeeded", 20, 20, 2)
    assert run.finished_at is not None
    assert Product.objects.count() == 20
    assert list(run.batch_set.values_list("payload", "attempts")) == [(None, 1), (None, 1)]


def test_a_batch_whose_worker_died_is_enqueued_again_then_failed(db, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "STALE_AFTER": 60, "BATCH_ATTEMPTS": 2}
    long_ago = timezone.now() - timedelta(seconds=61)
    run = queued_run([product(f"F-{i}") for i in range(5)], 5)
    broker = get_broker()
    broker.purge_queue()
    run.batch_set.update(status="running", claimed_by="gone:1:a", attempts=1, heartbeat_at=long_ago)
    _batches_requeue_stale(run, broker)
    batch = run.batch_set.get()
    assert (batch.status, batch.claimed_by, batch.attempts) == ("pending", "", 1)
    assert batch.error == "its worker (gone:1:a) stopped heart-beating"
    assert broker.queue_size() == 1  # a new task for it

    run.batch_set.update(status="running", claimed_by="gone:2:b", attempts=2, heartbeat_at=long_ago)
    _batches_requeue_stale(run, broker)
    batch.refresh_from_db()
    run.refresh_from_db()
    assert (batch.status, batch.failed, batch.payload) == ("failed", 5, None)
    reason = (
        "the batch failed 2 times, the last because its worker (gone:2:b) stopped heart-beating"
    )
    assert batch.error == reason
    assert (run.status, run.failed, run.failed_batches) == ("completed_with_failures", 5, 1)
    assert set(run.failure_set.values_list("upc", "message")) == {
        (f"F-{i}", reason) for i in range(5)
    }
    assert Product.objects.count() == 0
    broker.purge_queue()


# Two qcluster processes sharing PostgreSQL and Redis, as on two machines.


def big_feed(write_feed, prefix: str) -> str:
    shelves = ["Books > Computing", "Books > Fiction", "Toys > Puzzles", "Home > Kitchen"]
    partners = ["Acme Books", "Globex Wholesale", "Northwind Supplies"]
    items = [
        product(
            f"{prefix}-{i:05d}",
            title=f"Item {i}",
            categories=[shelves[i % 4], shelves[(i // 4) % 4]],
            stockrecords=[
                {
                    "partner": partners[i % 3],
                    "partner_sku": f"{prefix}-SKU-{i}",
                    "price": f"{i % 97}.{i % 100:02d}",
                    "num_in_stock": i % 13,
                }
            ],
        )
        for i in range(2000)
    ]
    return write_feed(items, name=f"{prefix}.json")


def catalogue() -> list[tuple]:
    """What a shopper sees of every product, without database ids."""
    names = {c.pk: c.full_name for c in Category.objects.all()}
    categories, stock = defaultdict(list), defaultdict(list)
    for product_id, category_id in ProductCategory.objects.values_list("product", "category"):
        categories[product_id].append(names[category_id])
    for product_id, *fields in StockRecord.objects.values_list(
        "product", "partner__name", "partner_sku", "price", "price_currency", "num_in_stock"
    ):
        stock[product_id].append(tuple(fields))
    return sorted(
        (*fields, sorted(categories[pk]), sorted(stock[pk]))
        for pk, *fields in Product.objects.values_list(
            "pk", "upc", "title", "slug", "product_class__name", "description", "is_public"
        )
    )


def clusters_of(run: SyncRun, clusters) -> set[int]:
    """The qcluster (by its process group) each batch of the run was written in."""
    pids = {int(c.rsplit(":", 2)[1]) for c in run.batch_set.values_list("claimed_by", flat=True)}
    groups = {c.pid for c in clusters}
    return {os.getpgid(pid) for pid in pids if _alive(pid)} & groups


def _alive(pid: int) -> bool:
    try:
        os.getpgid(pid)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clusters_build_the_same_catalogue_as_a_local_run(write_feed, cluster_env, tmp_path):
    feed = big_feed(write_feed, "FAN")
    call_command("sync_products", "--source", feed, "--batch-size", "50", stdout=StringIO())
    local = catalogue()
    assert len(local) == 2000
    Product.objects.all().delete()

    with (
        qcluster(cluster_env, tmp_path / "q1.log") as q1,
        qcluster(cluster_env, tmp_path / "q2.log") as q2,
    ):
        result = run_command(
            "sync_products",
            "--source",
            feed,
            "--workers",
            "queue",
            "--batch-size",
            "50",
            "--no-progress",
            env=cluster_env,
        )
        run = SyncRun.objects.get(workers="queue")
        worked = clusters_of(run, [q1, q2])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run.status, run.items, run.created, run.batches, run.planned_batches) == (
        "succeeded",
        2000,
        2000,
        40,
        40,
    )
    assert f"Run {run.pk} succeeded: 2000 items, 2000 created" in result.stdout
    assert result.stdout.count("Batch ") == 40  # progress, one line per batch as it reports
    assert worked == {q1.pid, q2.pid}
    assert catalogue() == local


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_cluster_loses_no_batch(write_feed, cluster_env, tmp_path):
    feed = big_feed(write_feed, "KIL")
    log = tmp_path / "planner.log"
    with (
        qcluster(cluster_env, tmp_path / "q1.log"),
        qcluster(cluster_env, tmp_path / "q2.log") as q2,
    ):
        planner = spawn_command(
            "sync_products",
            "--source",
            feed,
            "--workers",
            "queue",
            "--batch-size",
            "50",
            "--no-progress",
            env=cluster_env,
            log=log,
        )
        try:

            def claimed_in_q2():
                for claim in SyncBatch.objects.filter(status="running").values_list(
                    "claimed_by", flat=True
                ):
                    pid = int(claim.rsplit(":", 2)[1])
                    if _alive(pid) and os.getpgid(pid) == q2.pid:
                        return claim
                return None

            wait_for(claimed_in_q2, 60, "a batch in the second cluster", log, 0.01)
            os.killpg(q2.pid, signal.SIGKILL)  # the machine is lost, mid-batch
            assert planner.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            stop_group(planner)
    run = SyncRun.objects.get(workers="queue")
    assert (run.status, run.items, run.failed, run.batches) == ("succeeded", 2000, 0, 40)
    # Batches the dead worker had committed are found unchanged when written again.
    assert run.created + run.unchanged == 2000
    assert set(run.batch_set.values_list("status", flat=True)) == {"succeeded"}
    upcs = list(Product.objects.values_list("upc", flat=True))
    assert sorted(upcs) == [f"KIL-{i:05d}" for i in range(2000)]
    assert StockRecord.objects.count() == 2000
