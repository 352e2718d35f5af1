"""Edits another connection commits while a batch writes are repaired by a later run, never
taken for what the sync wrote (issue 29: PostgreSQL's READ COMMITTED lets a statement read
rows committed after the batch's own writes)."""

import threading
import time

import pytest
from django.db import connections
from oscar.core.loading import get_class, get_model

from productsync.services import sync_run_execute
from tests.conftest import product

Product = get_model("catalogue", "Product")
ProductCategory = get_model("catalogue", "ProductCategory")
create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Every item in one batch: the batch's transaction stays open long enough for many commits.
ITEMS = 2000
# The sync's batch as another connection sees it: the session holding a write lock on the
# product table (it has read the products' state and writes them), and when its transaction
# began, which names that transaction until it ends.
BATCH_SEEN = (
    "SELECT a.pid, a.xact_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.relation = %s::regclass AND l.mode = 'RowExclusiveLock' AND l.granted "
    "AND l.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL"
)
TRANSACTION_OF = "SELECT xact_start FROM pg_stat_activity WHERE pid = %s"


class Intruder(threading.Thread):
    """Someone else's script, on a connection of its own: once the sync's batch is seen
    writing products, it links one product after another to its category, one commit each,
    until the batch's transaction has ended."""

    def __init__(self, product_ids: list[int], category_id: int) -> None:
        super().__init__(name="intruder", daemon=True)
        self.product_ids = product_ids
        self.category_id = category_id
        self.during: list[int] = []  # linked by a commit made while the batch was open
        self.after: list[int] = []  # the commit that found the batch ended
        self.error: BaseException | None = None
        self.sync_done = threading.Event()  # set by the test when the sync has returned

    def run(self) -> None:
        try:
            with connections["default"].cursor() as cursor:
                batch = self._batch_wait(cursor)
                if batch is not None:
                    self._intrude(cursor, *batch)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            connections.close_all()

    def _batch_wait(self, cursor) -> tuple[int, object] | None:
        deadline = time.monotonic() + 120
        while not self.sync_done.is_set() and time.monotonic() < deadline:
            cursor.execute(BATCH_SEEN, [Product._meta.db_table])
            row = cursor.fetchone()
            if row is not None:
                return row
            time.sleep(0.001)
        return None

    def _intrude(self, cursor, pid: int, started) -> None:
        for product_id in self.product_ids:
            ProductCategory.objects.create(product_id=product_id, category_id=self.category_id)
            cursor.execute(TRANSACTION_OF, [pid])
            row = cursor.fetchone()
            if row is None or row[0] != started:
                self.after.append(product_id)
                return
            self.during.append(product_id)


def intruded(category) -> set[int]:
    return set(
        ProductCategory.objects.filter(category=category).values_list("product_id", flat=True)
    )


def test_links_committed_by_another_connection_during_a_batch_are_repaired(write_feed):
    items = [product(f"RACE-{i:04d}") for i in range(ITEMS)]
    first = sync_run_execute(write_feed(items, name="first.json"), batch_size=ITEMS)
    assert (first.status, first.created) == ("succeeded", ITEMS)
    category = create_from_breadcrumbs("Intruder")
    intruder = Intruder(
        list(Product.objects.order_by("pk").values_list("pk", flat=True)), category.pk
    )
    renamed = write_feed(
        [{**item, "title": item["title"] + " (2nd ed.)"} for item in items], name="renamed.json"
    )

    intruder.start()
    try:
        run = sync_run_execute(renamed, batch_size=ITEMS, allow_mass_change=True)
    finally:
        intruder.sync_done.set()
        intruder.join(120)
    assert not intruder.is_alive() and intruder.error is None, intruder.error
    assert (run.status, run.batches, run.updated) == ("succeeded", 1, ITEMS), run.notes
    # The race happened: links were committed while the batch's transaction was open.
    assert intruder.during, "no link was committed while the batch's transaction was open"
    linked = intruded(category)  # those the batch did not replace with the feed's categories

    repair = sync_run_execute(renamed, batch_size=ITEMS, full=True)

    kept = intruded(category)
    assert not kept, (
        f"{len(kept)} of {len(linked)} products kept the intruder's link after the repair run "
        f"({len(intruder.during)} links committed during the batch, {len(intruder.after)} "
        f"after; the repair run: repaired {repair.repaired}, unchanged {repair.unchanged})"
    )
    # Counted repaired: at least every product that kept a link after the batch, at most every
    # product linked after the sync had read the state (a link the batch itself replaced
    # leaves nothing to repair, though a run may still count it).
    touched = len(intruder.during) + len(intruder.after)
    assert len(linked) <= repair.repaired <= touched
    assert (repair.status, repair.updated, repair.unchanged) == (
        "succeeded",
        0,
        ITEMS - repair.repaired,
    )
    again = sync_run_execute(renamed, batch_size=ITEMS, full=True)
    assert (again.repaired, again.unchanged) == (0, ITEMS)
    assert not intruded(category)
