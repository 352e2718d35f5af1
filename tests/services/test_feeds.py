"""Feeds kept in the database: schedules that follow them, TOML in and out, the run a feed
makes, push tokens, and sync_products --feed."""

import subprocess
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_q.models import Schedule
from oscar.core.loading import get_model

from productsync import tasks
from productsync.feed_models import FEED_FORMATS, FEED_PRESETS
from productsync.feeds import FORMATS, PRESETS
from productsync.models import Feed, SyncRun
from productsync.services import (
    FeedFileError,
    feed_token_rotate,
    feed_token_valid,
    feeds_dump,
    feeds_load,
)
from tests.conftest import ROOT, product, subprocess_env

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

TWO_FEEDS = """
[[feed]]
name = "pim-nightly"
kind = "catalogue"
source = "{catalogue}"
schedule = "0 2 * * *"
hide_missing = true
alert_emails = ["shop-team@example.com"]
overdue_after = "26h"

[[feed]]
name = "acme-stock"
kind = "stock"
partner = "Acme Books"
source = "{stock}"
schedule = "*/10 * * * *"
batch_size = 500
"""


def feed_schedules() -> dict[str, tuple[str, str]]:
    rows = Schedule.objects.filter(func="productsync.tasks.feed_sync")
    return {s.name: (s.cron, s.args) for s in rows}


def load(text: str, **options) -> str:
    out = StringIO()
    call_command("feeds_load", "-", stdout=out, stdin=StringIO(text), **options)
    return out.getvalue()


@pytest.fixture
def feeds_file(tmp_path, write_feed):
    catalogue = write_feed([product(f"N-{i}") for i in range(3)], "nightly.json")
    stock = tmp_path / "acme.csv"
    stock.write_text("sku,price,num_in_stock\nSKU-N-0,12.50,7\nSKU-N-1,9.99,0\n")
    path = tmp_path / "feeds.toml"
    path.write_text(TWO_FEEDS.format(catalogue=catalogue, stock=stock))
    return path


def test_feeds_load_creates_feeds_and_their_schedules(db, feeds_file):
    out = StringIO()
    call_command("feeds_load", str(feeds_file), stdout=out)
    assert "2 created, 0 updated, 0 unchanged, 0 deleted" in out.getvalue()
    pim = Feed.objects.get(name="pim-nightly")
    assert (pim.kind, pim.hide_missing, pim.overdue_after) == (
        "catalogue",
        True,
        timedelta(hours=26),
    )
    assert pim.alert_emails == "shop-team@example.com"
    stock = Feed.objects.get(name="acme-stock")
    assert (stock.kind, stock.partner, stock.batch_size) == ("stock", "Acme Books", 500)
    assert feed_schedules() == {
        "productsync.feed.pim-nightly": ("0 2 * * *", f"({pim.pk},)"),
        "productsync.feed.acme-stock": ("*/10 * * * *", f"({stock.pk},)"),
    }
    # A feed with overdue_after brings the periodic check for overdue feeds.
    assert Schedule.objects.get(name="productsync.feeds_overdue").func == (
        "productsync.tasks.feeds_overdue"
    )


def test_schedules_follow_edits_renames_disabling_and_deletion(db, feeds_file):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    stock = Feed.objects.get(name="acme-stock")
    stock.schedule = "*/5 * * * *"
    stock.name = "acme-warehouse"
    stock.save()
    assert feed_schedules()["productsync.feed.acme-warehouse"][0] == "*/5 * * * *"
    assert "productsync.feed.acme-stock" not in feed_schedules()
    stock.enabled = False
    stock.save()
    assert set(feed_schedules()) == {"productsync.feed.pim-nightly"}
    stock.enabled = True
    stock.save()
    assert len(feed_schedules()) == 2
    Feed.objects.get(name="pim-nightly").delete()
    assert set(feed_schedules()) == {"productsync.feed.acme-warehouse"}
    assert not Schedule.objects.filter(name="productsync.feeds_overdue").exists()


def test_prune_removes_the_feeds_a_file_leaves_out_with_their_schedules(db, feeds_file):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    Feed.objects.create(name="old-supplier", source="/srv/old.csv", schedule="0 * * * *")
    assert len(feed_schedules()) == 3
    one = 'name = "other"\nsource = "/srv/other.json"\n'
    out = load(f"[[feed]]\n{one}", prune=True)
    assert "1 created, 0 updated, 0 unchanged, 3 deleted" in out
    assert list(Feed.objects.values_list("name", flat=True)) == ["other"]
    assert feed_schedules() == {}


def test_dump_then_load_changes_nothing(db, feeds_file):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    Feed.objects.create(
        name="price-list",
        kind="partial",
        source="https://erp.localhost/prices.csv?token=x",
        mapping='format = "csv"\npartial = true\n\n[fields]\nupc = "EAN"\n# it\'s "quoted"\n',
        alert_emails="a@example.com,b@example.com",
        alert_webhook="https://hooks.localhost/productsync",
        enabled=False,
        overdue_after=timedelta(days=8, minutes=30),
    )
    before = {f.name: _fields(f) for f in Feed.objects.all()}
    schedules = {s.name: (s.cron, s.next_run) for s in Schedule.objects.all()}
    dumped = feeds_dump()
    result = feeds_load(dumped, prune=True)
    assert (result.created, result.updated, result.deleted) == ([], [], [])
    assert {f.name: _fields(f) for f in Feed.objects.all()} == before
    assert {s.name: (s.cron, s.next_run) for s in Schedule.objects.all()} == schedules
    assert feeds_dump() == dumped


@pytest.mark.django_db(transaction=True)
def test_feeds_dump_piped_into_feeds_load_is_a_no_op(feeds_file):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    before = {f.name: _fields(f) for f in Feed.objects.all()}
    out = subprocess.run(
        [
            "sh",
            "-c",
            f"{_manage()} feeds_dump | {_manage()} feeds_load - --prune",
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "0 created, 0 updated, 2 unchanged, 0 deleted" in out.stdout

    assert {f.name: _fields(f) for f in Feed.objects.all()} == before


def _manage() -> str:
    import sys

    return f"{sys.executable} {ROOT / 'manage.py'}"


def _fields(feed: Feed) -> dict:
    return {
        f.name: getattr(feed, f.name)
        for f in Feed._meta.concrete_fields
        if f.name not in ("id", "created_at")
    }


@pytest.mark.parametrize(
    "text, line",
    [
        ("[[feed]\nname = 'x'", "not valid TOML"),
        ('[[feed]]\nname = "b"\nschedule = "every day"', "feed 'b': schedule:"),
        ('[[feed]]\nname = "b"\nbatch_size = "ten"', "feed 'b': batch_size: expected a whole"),
        ('[[feed]]\nname = "b"\nkind = "stock"', "feed 'b': partner: A stock file needs"),
        ('[[feed]]\nname = "b"\nshedule = "0 * * * *"', "feed 'b': shedule: unknown field"),
        ('[[feed]]\nname = "b"\noverdue_after = "soon"', "feed 'b': overdue_after: 'soon'"),
        ('[[feed]]\nname = "b"\nalert_emails = ["not-an-address"]', "feed 'b': alert_emails:"),
        ('[[feed]]\nname = "b b"', "feed 'b b': name:"),
        ('[[feed]]\nname = "a"\n[[feed]]\nname = "a"', "feed 'a': name: given twice"),
        ("[[feed]]\nsource = '/x'", "feed #2: name:"),
    ],
)
def test_a_bad_file_names_the_feed_and_field_and_changes_nothing(db, feeds_file, text, line):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    before = feeds_dump()
    schedules = feed_schedules()
    good = '[[feed]]\nname = "good"\nsource = "/srv/good.json"\nschedule = "0 * * * *"\n'
    bad = good + text if "feed #2" in line else text + "\n" + good
    with pytest.raises(CommandError) as caught:
        load(bad, prune=True)
    message = str(caught.value)
    assert line in message and "nothing was changed" in message
    assert "\n" not in message
    assert feeds_dump() == before and feed_schedules() == schedules


def test_a_stock_feed_syncs_its_file_with_its_partner_and_batch_size(db, feeds_file):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    nightly = SyncRun.objects.get(pk=tasks.feed_sync("pim-nightly"))
    assert (nightly.status, nightly.created, nightly.feed.name, nightly.trigger) == (
        "succeeded",
        3,
        "pim-nightly",
        "schedule",
    )
    stock_feed = Feed.objects.get(name="acme-stock")
    run = SyncRun.objects.get(pk=tasks.feed_sync(stock_feed.pk))
    assert (run.status, run.partial, run.batch_size, run.updated, run.feed_id) == (
        "succeeded",
        True,
        500,
        2,
        stock_feed.pk,
    ), run.error
    record = StockRecord.objects.get(partner_sku="SKU-N-0")
    assert (str(record.price), record.num_in_stock) == ("12.50", 7)


def test_a_disabled_or_deleted_feed_makes_no_scheduled_run(db, feeds_file):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    Feed.objects.filter(name="acme-stock").update(enabled=False)
    assert tasks.feed_sync("acme-stock") is None
    assert tasks.feed_sync(10_000) is None
    assert not SyncRun.objects.exists()


def test_sync_products_feed_runs_the_feed_as_its_schedule_does(db, feeds_file):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    out = StringIO()
    call_command("sync_products", "--feed", "pim-nightly", "--feed", "acme-stock", stdout=out)
    runs = list(SyncRun.objects.order_by("pk"))
    assert [(r.feed.name, r.trigger, r.status, r.partial) for r in runs] == [
        ("pim-nightly", "command", "succeeded", False),
        ("acme-stock", "command", "succeeded", True),
    ]
    assert runs[1].batch_size == 500 and runs[0].batch_size == 15


def test_sync_products_refuses_feed_with_source_or_reading_options(db, feeds_file):
    call_command("feeds_load", str(feeds_file), stdout=StringIO())
    for extra in (["--source", "/tmp/x.json"], ["--partner", "X"], ["--batch-size", "3"]):
        with pytest.raises(CommandError, match=r"--feed runs the feed as it is configured: --"):
            call_command("sync_products", "--feed", "pim-nightly", *extra, stdout=StringIO())
    with pytest.raises(CommandError, match="no feed named 'nope'"):
        call_command("sync_products", "--feed", "nope", stdout=StringIO())
    assert not SyncRun.objects.exists()


def test_push_tokens_are_kept_hashed_and_rotate(db):
    feed = Feed.objects.create(name="erp", kind="partial")
    first = feed_token_rotate(feed)
    assert first not in Feed.objects.get(pk=feed.pk).push_token
    assert feed_token_valid(Feed.objects.get(pk=feed.pk), first)
    out = StringIO()
    call_command("feeds_token", "erp", stdout=out)
    second = out.getvalue().strip()
    feed.refresh_from_db()
    assert feed_token_valid(feed, second) and not feed_token_valid(feed, first)
    assert not feed_token_valid(feed, "") and second not in feeds_dump()


def test_the_models_choices_are_the_readers(db):
    assert FEED_FORMATS == FORMATS and FEED_PRESETS == PRESETS


def test_feeds_load_reports_a_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("feeds_load", str(tmp_path / "none.toml"))
    with pytest.raises(FeedFileError, match="only \\[\\[feed\\]\\] tables"):
        feeds_load("feed = 3")


@pytest.mark.parametrize(
    "key, value, check_id",
    [
        ("CREDENTIALS", {"acme": "password"}, "productsync.E040"),
        ("ALLOW_PRIVATE", "127.0.0.1", "productsync.E241"),
        ("WEBHOOK_SECRET", "", "productsync.E242"),
        ("BASE_URL", "shop.localhost", "productsync.E243"),
        ("WEBHOOK_TIMEOUT", 0, "productsync.E244"),
        ("OVERDUE_CHECK_MINUTES", "5", "productsync.E244"),
    ],
)
def test_bad_feed_settings_are_reported(settings, key, value, check_id):
    from django.core.checks import run_checks

    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, key: value}
    assert check_id in [error.id for error in run_checks()]


def test_a_feed_names_credentials_that_exist(db, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREDENTIALS": {"acme-sftp": {}}}
    with pytest.raises(FeedFileError, match="feed 'x': credentials: 'nope' is not an entry"):
        feeds_load('[[feed]]\nname = "x"\nsource = "/a.csv"\ncredentials = "nope"')
    feeds_load('[[feed]]\nname = "x"\nsource = "/a.csv"\ncredentials = "acme-sftp"')
    assert Feed.objects.get().credentials == "acme-sftp"
