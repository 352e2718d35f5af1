"""A feed's own stock_authoritative and max_failures, as the command's options: kept in the
feed (its admin form, feeds.toml) and used by every run it makes."""

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from productsync.models import Feed, SyncRun
from productsync.services import feed_run_execute
from tests.conftest import product

pytestmark = pytest.mark.django_db


def test_a_feed_authoritative_for_stock_says_so_in_each_run(write_feed):
    Feed.objects.create(name="warehouse", source=write_feed([product("W1")]))
    plain = SyncRun.objects.get(pk=feed_run_execute("warehouse"))
    Feed.objects.filter(name="warehouse").update(stock_authoritative=True)
    authoritative = SyncRun.objects.get(pk=feed_run_execute("warehouse"))

    assert (plain.stock_authoritative, authoritative.stock_authoritative) == (False, True)
    assert any(note.startswith("stock authoritative") for note in authoritative.notes)


def test_a_feed_with_max_failures_stops_its_run_once_more_items_failed(write_feed):
    items = [product(f"M{i}") for i in range(10)] + [product(f"X{i}", title="") for i in range(10)]
    Feed.objects.create(name="supplier", source=write_feed(items), batch_size=5, max_failures="10%")

    run = SyncRun.objects.get(pk=feed_run_execute("supplier"))

    assert run.status == SyncRun.Status.FAILED
    assert "more than the failure limit (10%)" in run.error
    assert run.created == 10


@pytest.mark.parametrize("limit", ["lots", "150%", "-1"])
def test_a_feed_max_failures_that_is_not_a_limit_is_refused(write_feed, limit):
    feed = Feed(name="bad", source=write_feed([product("B1")]), max_failures=limit)
    with pytest.raises(ValidationError) as refused:
        feed.full_clean()
    assert "max_failures" in refused.value.message_dict


def test_feeds_toml_gives_both_and_dumps_them_back(tmp_path, write_feed):
    source = write_feed([product("T1")])
    path = tmp_path / "feeds.toml"
    path.write_text(
        f'[[feed]]\nname = "nightly"\nsource = "{source}"\nstock_authoritative = true\n'
        "max_failures = 50\n",
        encoding="utf-8",
    )
    call_command("feeds_load", str(path), stdout=StringIO())
    feed = Feed.objects.get(name="nightly")
    out = StringIO()
    call_command("feeds_dump", stdout=out)

    assert (feed.stock_authoritative, feed.max_failures) == (True, "50")
    assert "stock_authoritative = true" in out.getvalue()
    assert 'max_failures = "50"' in out.getvalue()
