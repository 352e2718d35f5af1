"""Two sources written at the same moment converge: no stock record lost, no valid item
failed by a race, the ledger balanced, and a re-run gives what a serial replay gives."""

import threading
import uuid

import pytest
import redis
from django.db import connections
from oscar.core.loading import get_model

from productsync.models import SyncBatch, SyncedProduct, SyncRun
from productsync.services import sync_run_execute
from tests.conftest import REDIS_URL, product, qcluster, spawn_command, wait_for

Category = get_model("catalogue", "Category")
Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

ROUNDS = 20
SIZE = 40
BATCH = 4


def item(n: int, sku: int, category: str) -> dict:
    stock = {"partner": "Acme", "partner_sku": f"SKU-{sku:03d}", "price": "1.00"}
    return product(f"U{n:03d}", categories=[category], stockrecords=[stock])


def feeds(write_feed) -> dict[str, tuple[str, list[dict]]]:
    """A; B: A's products, each with its neighbour's SKU; C: half of A's and as many new
    ones (new categories too), the shared half the same as in A."""
    a = [item(n, n, f"Shop > Part {n % 5}") for n in range(SIZE)]
    b = [item(n, (n + 1) % SIZE, f"Shop > Part {n % 5}") for n in range(SIZE)]
    c = a[: SIZE // 2] + [item(n, n, f"Shop > New {n % 7} > Leaf") for n in range(SIZE, SIZE + 20)]
    return {
        name: (write_feed(items, f"{name}.json"), items)
        for name, items in zip("ABC", (a, b, c), strict=True)
    }


def catalogue() -> dict[str, list]:
    state = {upc: [] for upc in Product.objects.values_list("upc", flat=True)}
    for upc, sku, price in StockRecord.objects.values_list("product__upc", "partner_sku", "price"):
        state[upc].append((sku, str(price)))
    categories = dict(Product.objects.values_list("upc", "categories__name"))
    return {upc: (sorted(skus), categories[upc]) for upc, skus in state.items()}


def reset() -> None:
    Product.objects.all().delete()
    Category.objects.all().delete()


def together_local(*sources: str) -> list[SyncRun]:
    """Sync the sources at the same moment, one thread (and connection) each."""
    barrier = threading.Barrier(len(sources))
    runs: dict[str, SyncRun] = {}
    errors = []

    def sync(source: str) -> None:
        try:
            barrier.wait()
            runs[source] = sync_run_execute(source, batch_size=BATCH, full=True)
        except Exception as exc:  # reported below, with the round
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sync, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return [runs[s] for s in sources]


def together_queued(env: dict, tmp_path):
    """Start `sync_products --workers queue` for each source at the same moment, one process
    each, their batches written by the one qcluster's workers in whatever order they come."""

    def together(*sources: str) -> list[SyncRun]:
        last = SyncRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        args = ("--workers", "queue", "--batch-size", str(BATCH), "--full", "--no-progress")
        planners = [
            spawn_command("sync_products", "--source", s, *args, env=env, log=tmp_path / f"{n}.log")
            for n, s in enumerate(sources)
        ]
        for n, planner in enumerate(planners):
            # 1: some items failed (the rotating SKUs); the rounds check which.
            assert planner.wait(timeout=180) in (0, 1), (tmp_path / f"{n}.log").read_text()[-3000:]
        runs = {r.source: r for r in SyncRun.objects.filter(pk__gt=last)}
        assert all(r.workers == "queue" for r in runs.values())
        return [runs[s] for s in sources]

    return together


def assert_written_as_last_writer_said(feed_items: dict[int, dict[str, dict]]) -> None:
    """Every product's stock records are those of the item of the run that last wrote it:
    a run never records a product written while another moved its stock away."""
    state = catalogue()
    for upc, run_id in SyncedProduct.objects.values_list("product__upc", "last_run_id"):
        said = feed_items[run_id][upc]
        expected = sorted((sr["partner_sku"], sr["price"]) for sr in said["stockrecords"])
        assert state[upc][0] == expected, (upc, run_id)


def assert_ledger(run: SyncRun) -> None:
    run.refresh_from_db()
    batches = run.batch_set.all()
    assert run.items == run.created + run.updated + run.unchanged + run.failed
    assert run.items == sum(b.items for b in batches) == SIZE
    assert run.failed == run.failure_set.count()


def interleaved(runs: list[SyncRun]) -> bool:
    """Whether the runs' batches were written in turns (A, B, A at least), not one run
    after the other: a round that did not interleave tests nothing."""
    order = SyncBatch.objects.filter(run__in=runs).order_by("finished_at", "pk")
    run_ids = list(order.values_list("run_id", flat=True))
    return sum(1 for x, y in zip(run_ids, run_ids[1:], strict=False) if x != y) >= 2


def rounds(write_feed, together) -> None:
    """ROUNDS rounds of two sources written together, alternating the rotating-SKU overlap
    (A and B) and the same-content overlap (A and C), each checked as it ends; a quarter of
    the rounds at least must have interleaved (seen: 20 of 20 local, 15 of 20 queued)."""
    sources = feeds(write_feed)
    (a, a_items), (b, b_items), (c, c_items) = sources.values()

    # The serial replay: A then C, on an empty catalogue and again on that result.
    sync_run_execute(a, batch_size=BATCH)
    sync_run_execute(c, batch_size=BATCH)
    serial = catalogue()
    reset()

    by_upc = {src: {i["upc"]: i for i in items} for src, items in sources.values()}
    turns = 0
    for round_number in range(ROUNDS):
        reset()
        rotating = round_number % 2 == 0
        pair = (a, b) if rotating else (a, c)
        runs = together(*pair)
        feed_items = {run.pk: by_upc[run.source] for run in runs}
        turns += interleaved(runs)
        for run in runs:
            assert_ledger(run)
            messages = list(run.failure_set.values_list("message", flat=True))
            if rotating:
                # A SKU another product holds fails the item claiming it (the feed order
                # rule); nothing else may fail, whichever run wrote first.
                assert all("belongs to product" in m for m in messages), messages
            else:
                assert messages == [], (round_number, messages)
        assert_written_as_last_writer_said(feed_items)
        assert all(skus for skus, _ in catalogue().values())  # no product lost its stock

        if not rotating:
            assert catalogue() == serial, round_number
            rerun = sync_run_execute(a, batch_size=BATCH, full=True)
            assert (rerun.unchanged, rerun.failed) == (SIZE, 0)
            assert catalogue() == serial
    assert turns >= ROUNDS // 4, f"only {turns} of {ROUNDS} rounds interleaved"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_sources_written_together_converge(write_feed):
    rounds(write_feed, together_local)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_queue_runs_written_together_converge(write_feed, tmp_path):
    name = f"ps18-{uuid.uuid4().hex[:8]}"
    env = {"Q_REDIS_URL": REDIS_URL, "Q_CLUSTER_NAME": name, "Q_WORKERS": "4"}
    log = tmp_path / "qcluster.log"
    try:
        with qcluster(env, log):
            wait_for(lambda: "running." in log.read_text(), 60, "the qcluster to start", log)
            rounds(write_feed, together_queued(env, tmp_path))
    finally:
        redis.from_url(REDIS_URL).delete(f"django_q:{name}:q")
