"""--only create writes new products only; --only update writes existing products only."""

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.exceptions import ProductSyncError
from productsync.models import Feed, SyncFailure, SyncRun
from productsync.services import (
    FeedFileError,
    feed_run_execute,
    feeds_dump,
    feeds_load,
    sync_run_execute,
)
from productsync.services.mode import run_mode
from tests.conftest import product

Product = get_model("catalogue", "Product")

pytestmark = pytest.mark.django_db


def titles() -> dict:
    return dict(Product.objects.values_list("upc", "title"))


@pytest.fixture
def two(write_feed):
    run = sync_run_execute(write_feed([product("A1"), product("A2")], "seed.json"))
    assert run.created == 2


def changed_and_new(write_feed) -> str:
    return write_feed([product("A1", title="Renamed"), product("A2"), product("N1")])


def test_only_create_creates_new_products_and_leaves_existing_ones(write_feed, two):
    run = sync_run_execute(changed_and_new(write_feed), only="create")

    assert (run.status, run.only) == ("succeeded", "create")
    assert (run.created, run.updated, run.unchanged, run.failed) == (1, 0, 2, 0)
    assert titles() == {"A1": "Product A1", "A2": "Product A2", "N1": "Product N1"}
    # The existing product left as it was is updated by the next run that may update it.
    again = sync_run_execute(changed_and_new(write_feed))
    assert (again.updated, again.unchanged) == (1, 2)
    assert titles()["A1"] == "Renamed"


def test_only_update_updates_existing_products_and_fails_unknown_ones_alone(write_feed, two):
    run = sync_run_execute(changed_and_new(write_feed), only="update")

    assert (run.status, run.only) == ("completed_with_failures", "update")
    assert (run.created, run.updated, run.unchanged, run.failed) == (0, 1, 1, 1)
    failure = SyncFailure.objects.get(run=run)
    assert (failure.upc, failure.field) == ("N1", "upc")
    assert failure.message == (
        "upc: no product with upc 'N1'; this run updates existing products only"
    )
    assert "N1" not in titles() and titles()["A1"] == "Renamed"


def test_only_update_fails_an_item_with_an_unknown_child_alone(write_feed):
    child = {"upc": "C1", "title": "Small", "attributes": {}}
    seed = product("V1", children=[child], stockrecords=[])
    sync_run_execute(write_feed([seed, product("A1")], "seed.json"))
    grown = product(
        "V1", children=[child, {"upc": "C2", "title": "Large", "attributes": {}}], stockrecords=[]
    )

    run = sync_run_execute(write_feed([grown, product("A1", title="Renamed")]), only="update")

    assert (run.updated, run.failed) == (1, 1)
    failure = SyncFailure.objects.get(run=run)
    assert (failure.upc, failure.field) == ("V1", "children[1].upc")
    assert "no product with upc 'C2'" in failure.message
    assert not Product.objects.filter(upc="C2").exists()


def test_the_command_and_a_feed_take_only(write_feed, two, capsys):
    path = changed_and_new(write_feed)
    call_command("sync_products", "--source", path, "--only", "create", "--no-progress")
    assert SyncRun.objects.latest("pk").created == 1

    Feed.objects.create(name="updates", source=path, only="update")
    run = SyncRun.objects.get(pk=feed_run_execute("updates"))
    assert (run.only, run.created, run.updated, run.failed) == ("update", 0, 1, 0)


def test_a_partial_run_cannot_only_create(write_feed, two):
    with pytest.raises(ProductSyncError, match="only create: a partial run creates no"):
        sync_run_execute(write_feed([{"upc": "A1", "title": "x"}]), partial=True, only="create")


def test_a_feeds_file_gives_only_and_allow_mass_change_and_dumps_them_back(db):
    text = (
        '[[feed]]\nname = "prices"\nsource = "/srv/prices.json"\nallow_mass_change = true\n'
        'only = "update"\n'
    )
    load_result = feeds_load(text)
    feed = Feed.objects.get(name="prices")

    assert (load_result.created, feed.allow_mass_change, feed.only) == (["prices"], True, "update")
    assert 'allow_mass_change = true\nonly = "update"' in feeds_dump()
    assert feeds_load(feeds_dump()).unchanged == ["prices"]
    with pytest.raises(FeedFileError, match="feed 'bad': only: "):
        feeds_load('[[feed]]\nname = "bad"\nsource = "/x.json"\nonly = "upsert"\n')
    with pytest.raises(FeedFileError, match="only: Only a catalogue feed creates products"):
        feeds_load('[[feed]]\nname = "p"\nkind = "partial"\nsource = "/x"\nonly = "create"\n')


def test_a_resumed_run_and_a_queue_worker_keep_the_runs_choices(write_feed, two):
    original = sync_run_execute(
        write_feed([product("A1"), {"upc": "bad"}]), only="update", allow_mass_change=True
    )
    original.status = SyncRun.Status.FAILED
    original.save(update_fields=["status"])

    resumed = sync_run_execute(resume=original.pk)

    assert (resumed.resumed_from_id, resumed.only, resumed.allow_mass_change) == (
        original.pk,
        "update",
        True,
    )
    worker = run_mode(resumed)
    assert (worker.only, worker.allow_mass_change, worker.writer(resumed).only) == (
        "update",
        True,
        "update",
    )


def test_only_create_hides_nothing(write_feed, two):
    same_source = write_feed([product("A1", title="Renamed"), product("N1")], "seed.json")

    run = sync_run_execute(same_source, only="create", hide_missing=True)

    assert run.hidden == 0 and Product.objects.filter(is_public=False).count() == 0
    why = "this run creates new products only, leaving the feed's existing ones untouched"
    assert f"hide-missing: nothing hidden because {why}" in run.notes
