"""--hide-missing: products that left a complete feed are hidden (never deleted), with a guard
against hiding too many and no hiding at all after an incomplete run."""

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.services import sync_run_execute
from tests.conftest import product

Product = get_model("catalogue", "Product")


@pytest.fixture
def ten(db, write_feed):
    """A source synced once with ten products; returns the items and the feed path."""
    items = [product(f"P{n}") for n in range(10)]
    source = write_feed(items)
    sync_run_execute(source)
    return items, source


def public_upcs() -> list[str]:
    return sorted(Product.objects.filter(is_public=True).values_list("upc", flat=True))


def test_a_product_that_left_the_feed_is_hidden_and_shown_again_when_it_returns(ten, write_feed):
    items, source = ten
    write_feed(items[1:])

    run = sync_run_execute(source, hide_missing=True)

    assert (run.status, run.unchanged, run.hidden) == ("succeeded", 9, 1)
    assert run.notes == ["hide-missing: 1 products missing from the feed hidden"]
    assert Product.objects.filter(upc="P0", is_public=False).exists()  # not deleted
    assert "P0" not in public_upcs()

    write_feed(items)
    run = sync_run_execute(source, hide_missing=True)
    assert (run.updated, run.unchanged, run.hidden) == (1, 9, 0)
    assert len(public_upcs()) == 10


def test_without_the_option_nothing_is_hidden(ten, write_feed):
    items, source = ten
    write_feed(items[1:])
    run = sync_run_execute(source)
    assert (run.hidden, run.notes) == (0, [])
    assert len(public_upcs()) == 10


def test_the_setting_turns_it_on(ten, write_feed, settings):
    items, source = ten
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "HIDE_MISSING": True}
    write_feed(items[2:])
    assert sync_run_execute(source).hidden == 2


def test_guard_hides_nothing_when_too_many_would_go(ten, write_feed):
    items, source = ten
    write_feed(items[:7])  # 3 of 10 missing: 30% > the default 20%

    run = sync_run_execute(source, hide_missing=True)

    assert run.hidden == 0
    assert run.notes == [
        "hide-missing: nothing hidden because 3 of the source's 10 products (30%) are missing "
        "from the feed, more than PRODUCTSYNC['HIDE_MISSING_MAX_FRACTION'] (20%)"
    ]
    assert len(public_upcs()) == 10


def test_guard_fraction_is_a_setting(ten, write_feed, settings):
    items, source = ten
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "HIDE_MISSING_MAX_FRACTION": 0.5}
    write_feed(items[:7])
    assert sync_run_execute(source, hide_missing=True).hidden == 3


def test_nothing_is_hidden_after_a_limited_run(ten):
    _, source = ten
    run = sync_run_execute(source, hide_missing=True, limit=5)
    assert run.hidden == 0
    assert run.notes == ["hide-missing: nothing hidden because a limit read only part of the feed"]


def test_nothing_is_hidden_when_the_feed_broke(ten):
    items, source = ten
    with open(source, "w") as feed:  # truncated after the first item
        feed.write('[{"upc": "P0", "title": "Product P0", "product_class": "Book"}, {"upc": "P')

    run = sync_run_execute(source, hide_missing=True)

    assert run.status == "failed"
    assert run.hidden == 0
    assert run.notes[-1] == (
        "hide-missing: nothing hidden because the run did not read the whole feed"
    )
    assert len(public_upcs()) == 10


def test_an_item_that_failed_is_not_taken_for_missing(ten, write_feed):
    items, source = ten
    items[3]["stockrecords"][0]["price"] = "-1"
    write_feed(items[1:])

    run = sync_run_execute(source, hide_missing=True)

    assert (run.failed, run.hidden) == (1, 1)  # P0 hidden, the failed P3 kept
    assert "P3" in public_upcs()


def test_nothing_is_hidden_when_a_failed_item_has_no_upc(ten, write_feed):
    items, source = ten
    write_feed([{"title": "no upc"}] + items[1:])
    run = sync_run_execute(source, hide_missing=True)
    assert run.hidden == 0
    assert run.notes[-1].startswith("hide-missing: nothing hidden because some failed items")


def test_other_sources_are_left_alone(ten, write_feed, tmp_path):
    other = tmp_path / "other.json"
    other.write_text('[{"upc": "X1", "title": "Other", "product_class": "Book"}]')
    run = sync_run_execute(str(other), hide_missing=True)
    assert (run.created, run.hidden) == (1, 0)
    assert len(public_upcs()) == 11


def test_command_option_and_summary(ten, write_feed, capsys):
    items, source = ten
    write_feed(items[1:])
    call_command("sync_products", "--source", source, "--hide-missing", "--no-progress", "--json")
    out = capsys.readouterr().out
    assert "Note: hide-missing: 1 products missing from the feed hidden" in out
    assert ", 1 hidden;" in out
    assert '"hidden": 1' in out.splitlines()[-1]


@pytest.mark.parametrize(
    "key, value, check_id",
    [
        ("HIDE_MISSING_MAX_FRACTION", 2, "productsync.E010"),
        ("HIDE_MISSING", "yes", "productsync.E009"),
        ("CREATE_ATTRIBUTES", 1, "productsync.E009"),
        ("IMAGE_TIMEOUT", 0, "productsync.E003"),
    ],
)
def test_bad_settings_are_reported_by_system_checks(settings, key, value, check_id):
    from productsync.checks import check_settings

    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, key: value}
    assert [error.id for error in check_settings(None)] == [check_id]
