"""What Oscar's save() and signals would have done, done once in bulk: the search index,
Oscar's search page, the category materialised view, and the batch_committed signal."""

import pytest
from django.db import connection
from django.dispatch import receiver
from django.test.utils import CaptureQueriesContext
from haystack import connections
from haystack.query import SearchQuerySet
from oscar.core.loading import get_model

from productsync import signals
from productsync.services import sync_run_execute
from tests.conftest import product

Product = get_model("catalogue", "Product")


def lantern(upc: str = "L1", **fields) -> dict:
    return product(upc, title="Zanzibar Brass Lantern", **fields)


def test_oscars_search_page_finds_a_synced_product(db, client, write_feed):
    hidden = product("H1", title="Zanzibar Hidden Lantern", is_public=False)
    shirt = product("S1", title="Shirt", stockrecords=[])
    shirt["children"] = [{"upc": "S1-Z", "title": "Zanzibar stripes"}]
    sync_run_execute(write_feed([lantern(), product("B1"), hidden, shirt]))

    response = client.get("/search/", {"q": "Zanzibar"})

    # The shop's simple backend searches the database live; Oscar shows browsable products
    # only (public, not children).
    assert response.status_code == 200
    found = [result.object for result in response.context["page_obj"].object_list]
    assert [p.upc for p in found] == ["L1"]
    assert "Zanzibar Brass Lantern" in response.content.decode()


@pytest.fixture
def whoosh_index(tmp_path, monkeypatch):
    """A second haystack connection with a real index on disk (Whoosh)."""
    monkeypatch.setitem(
        connections.connections_info,
        "whoosh",
        {"ENGINE": "haystack.backends.whoosh_backend.WhooshEngine", "PATH": str(tmp_path / "ix")},
    )
    yield "whoosh"
    connections.thread_local.connections.pop("whoosh", None)


def titles_in(alias: str, word: str) -> list[str]:
    return [r.title for r in SearchQuerySet(using=alias).models(Product).filter(content=word)]


def test_search_index_is_updated_after_each_batch_commits(
    db, write_feed, whoosh_index, django_capture_on_commit_callbacks
):
    feed = [lantern(), product("B1"), product("B2")]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = sync_run_execute(write_feed(feed), batch_size=2)
    assert len(callbacks) == run.batches == 2
    assert titles_in(whoosh_index, "Zanzibar") == ["Zanzibar Brass Lantern"]

    feed[0]["title"] = "Zanzibar Copper Lantern"
    feed[0]["is_public"] = False
    feed[1]["title"] = "Copper Kettle"
    with django_capture_on_commit_callbacks(execute=True):
        sync_run_execute(write_feed(feed), batch_size=2)
    # A product that is no longer browsable leaves the index; a renamed one is found by name.
    assert titles_in(whoosh_index, "Zanzibar") == []
    assert titles_in(whoosh_index, "Kettle") == ["Copper Kettle"]


def test_search_index_is_not_touched_by_a_dry_run(
    db, write_feed, whoosh_index, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sync_run_execute(write_feed([lantern()]), dry_run=True)
    assert callbacks == []
    assert titles_in(whoosh_index, "Zanzibar") == []


def test_batch_committed_signal(db, write_feed):
    received = []

    @receiver(signals.batch_committed)
    def collect(sender, run, batch, product_ids, **kwargs):
        received.append((run.pk, batch.number, batch.created, sorted(product_ids)))

    try:
        shirt = lantern("S1", children=[{"upc": "S1-S"}, {"upc": "S1-M"}], stockrecords=[])
        run = sync_run_execute(write_feed([shirt, product("B1"), product("B2")]), batch_size=2)
        sync_run_execute(write_feed([product("B3")]), dry_run=True)
    finally:
        signals.batch_committed.disconnect(collect)

    ids = dict(Product.objects.values_list("upc", "pk"))
    assert received == [
        (run.pk, 1, 2, sorted(ids[u] for u in ["S1", "S1-S", "S1-M", "B1"])),
        (run.pk, 2, 1, [ids["B2"]]),
    ]


@pytest.mark.postgres
def test_category_materialised_view_is_refreshed_once_per_run(db, write_feed, settings):
    settings.OSCAR_CATALOGUE_USE_POSTGRES_MATERIALISED_VIEWS = True
    feed = [product(f"P{n}", categories=["Books > Computing > Python"]) for n in range(5)]
    with CaptureQueriesContext(connection) as first_queries:
        sync_run_execute(write_feed(feed), batch_size=2)
    for item in feed:
        item["categories"] = ["Books > Fiction"]

    with CaptureQueriesContext(connection) as queries:
        run = sync_run_execute(write_feed(feed), batch_size=2)

    assert run.updated == 5
    # The first into an empty view (nobody to keep it readable for), then CONCURRENTLY.
    for captured, how in ((first_queries, "VIEW catalogue"), (queries, "VIEW CONCURRENTLY")):
        refreshes = [q["sql"] for q in captured if "REFRESH MATERIALIZED" in q["sql"]]
        assert len(refreshes) == 1 and how in refreshes[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.name, count(*) FROM catalogue_product_category_hierarchy h "
            "JOIN catalogue_category c ON c.id = h.category_id GROUP BY c.name ORDER BY c.name"
        )
        assert cursor.fetchall() == [("Books", 5), ("Fiction", 5)]
