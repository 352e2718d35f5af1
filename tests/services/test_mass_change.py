"""The mass-change guard: a run whose first items would clear, zero or change one field of
most of the products they match stops, failed, before it writes anything."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.checks import check_settings
from productsync.models import Feed, SyncRun
from productsync.services import feed_run_execute, guard, sync_run_execute
from tests.conftest import product

StockRecord = get_model("partner", "StockRecord")

pytestmark = pytest.mark.django_db
HEADER = "upc,title,product_class,categories,partner,partner_sku,price,currency,num_in_stock\n"


def catalogue_csv(tmp_path, price=lambda i: f"{39 + i}.99", stock=lambda i: "5", count=20) -> str:
    """Twenty jewellery products; the first is chain-bracelet at 39.99."""
    names = ["chain-bracelet", *(f"ring-{i}" for i in range(1, count))]
    rows = [
        f"{upc},Item {upc},Jewellery,Jewellery,Acme,SKU-{upc},{price(i)},GBP,{stock(i)}\n"
        for i, upc in enumerate(names)
    ]
    path = tmp_path / f"catalogue-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return str(path)


def prices() -> list:
    return list(StockRecord.objects.order_by("partner_sku").values_list("price", flat=True))


@pytest.fixture
def twenty(tmp_path):
    run = sync_run_execute(catalogue_csv(tmp_path))
    assert (run.status, run.created) == ("succeeded", 20)
    return prices()


def test_an_all_empty_price_column_is_stopped_before_any_commit(tmp_path, twenty):
    run = sync_run_execute(catalogue_csv(tmp_path, price=lambda i: ""))

    assert run.status == SyncRun.Status.FAILED
    assert (
        "price: 20 of 20 matched products would be cleared, e.g. chain-bracelet 39.99 -> empty"
        in (run.error)
    )
    assert (run.batches, run.items, run.updated) == (0, 0, 0)
    assert prices() == twenty


def test_allow_mass_change_lets_a_deliberate_change_through(tmp_path, twenty):
    run = sync_run_execute(catalogue_csv(tmp_path, price=lambda i: "1.00"), allow_mass_change=True)

    assert (run.status, run.updated, run.allow_mass_change) == ("succeeded", 20, True)
    assert set(prices()) == {Decimal("1.00")}


def test_a_repricing_of_a_few_products_passes(tmp_path, twenty):
    run = sync_run_execute(
        catalogue_csv(tmp_path, price=lambda i: "1.00" if i < 10 else f"{39 + i}.99")
    )

    assert (run.status, run.updated, run.unchanged) == ("succeeded", 10, 10)


def test_zeroed_stock_is_stopped_and_moved_stock_is_not(tmp_path, twenty):
    moved = sync_run_execute(catalogue_csv(tmp_path, stock=lambda i: str(i + 7)))
    zeroed = sync_run_execute(catalogue_csv(tmp_path, stock=lambda i: "0"))

    assert (moved.status, moved.updated) == ("succeeded", 20)
    assert zeroed.status == SyncRun.Status.FAILED
    assert (
        "num_in_stock: 20 of 20 matched products would be zeroed, e.g. chain-bracelet 7 -> 0"
        in (zeroed.error)
    )


def test_the_guard_judges_a_streamed_feed_before_its_first_batch_commits(tmp_path, twenty):
    run = sync_run_execute(catalogue_csv(tmp_path, price=lambda i: ""), batch_size=3)

    assert run.status == SyncRun.Status.FAILED
    assert "price: 20 of 20 matched products" in run.error
    assert run.batches == 0
    assert prices() == twenty


def test_a_first_import_has_nothing_to_judge(tmp_path):
    run = sync_run_execute(catalogue_csv(tmp_path, price=lambda i: ""))

    assert (run.status, run.created) == ("succeeded", 20)


def test_a_dry_run_the_guard_would_stop_says_so(tmp_path, twenty):
    run = sync_run_execute(catalogue_csv(tmp_path, price=lambda i: ""), dry_run=True, diff=True)

    assert run.status == SyncRun.Status.FAILED
    assert "would be cleared" in run.error


def test_the_fraction_is_a_setting_checked_at_start(tmp_path, twenty, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "MASS_CHANGE_MAX_FRACTION": 1}
    run = sync_run_execute(catalogue_csv(tmp_path, price=lambda i: "2.00"))
    assert (run.status, run.updated) == ("succeeded", 20)

    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "MASS_CHANGE_MAX_FRACTION": "half"}
    assert [e.id for e in check_settings(None)] == ["productsync.E034"]


def test_the_command_exits_non_zero_and_its_option_lets_it_through(tmp_path, twenty):
    path = catalogue_csv(tmp_path, price=lambda i: "")
    out = StringIO()

    with pytest.raises(SystemExit) as stopped:
        call_command("sync_products", "--source", path, "--no-progress", stdout=out)
    call_command("sync_products", "--source", path, "--no-progress", "--allow-mass-change")

    assert stopped.value.code == 1
    assert "price: 20 of 20 matched products would be cleared" in out.getvalue()
    assert prices() == [None] * 20


def test_the_guard_reads_ahead_no_more_than_its_byte_bound_beyond_the_first_batch(
    tmp_path, twenty, monkeypatch
):
    monkeypatch.setattr(guard, "GUARD_BYTES", 1)

    run = sync_run_execute(catalogue_csv(tmp_path, price=lambda i: ""), batch_size=12)

    assert "price: 12 of 12 matched products would be cleared" in run.error
    assert prices() == twenty


def test_a_feed_allowing_mass_change_or_the_command_naming_it_lets_it_through(tmp_path, twenty):
    Feed.objects.create(name="reprice", source=catalogue_csv(tmp_path, price=lambda i: "2.00"))
    with pytest.raises(SystemExit):
        call_command("sync_products", "--feed", "reprice", "--no-progress", stdout=StringIO())
    call_command("sync_products", "--feed", "reprice", "--allow-mass-change", "--no-progress")
    assert {str(p) for p in prices()} == {"2.00"}

    Feed.objects.filter(name="reprice").update(
        source=catalogue_csv(tmp_path, price=lambda i: "3.00"), allow_mass_change=True
    )
    run = SyncRun.objects.get(pk=feed_run_execute("reprice"))
    assert (run.status, run.updated, run.allow_mass_change) == ("succeeded", 20, True)


def stock_csv(tmp_path, stock) -> str:
    """A stock file of Acme's twenty stock records (sku, price, num_in_stock)."""
    names = ["chain-bracelet", *(f"ring-{i}" for i in range(1, 20))]
    rows = [f"SKU-{upc},{39 + i}.99,{stock(i)}\n" for i, upc in enumerate(names)]
    path = tmp_path / f"stock-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text("sku,price,num_in_stock\n" + "".join(rows), encoding="utf-8")
    return str(path)


def levels() -> list:
    return list(StockRecord.objects.order_by("partner_sku").values_list("num_in_stock", flat=True))


def test_a_stock_file_of_zeros_is_stopped_and_one_of_moved_levels_is_not(tmp_path, twenty):
    moved = sync_run_execute(
        stock_csv(tmp_path, lambda i: str(i + 7)), feed_options={"partner": "Acme"}
    )
    before = levels()
    zeroed = sync_run_execute(stock_csv(tmp_path, lambda i: "0"), feed_options={"partner": "Acme"})

    assert (moved.status, moved.updated) == ("succeeded", 20)
    assert zeroed.status == SyncRun.Status.FAILED
    assert (
        "num_in_stock: 20 of 20 matched products would be zeroed, e.g. SKU-chain-bracelet 7 -> 0"
        in zeroed.error
    )
    assert (zeroed.batches, zeroed.updated) == (0, 0)
    assert levels() == before

    allowed = sync_run_execute(
        stock_csv(tmp_path, lambda i: "0"), feed_options={"partner": "Acme"}, allow_mass_change=True
    )
    assert (allowed.status, allowed.updated, set(levels())) == ("succeeded", 20, {0})


@pytest.mark.parametrize("emptied", ["categories", "attributes"])
def test_categories_or_attributes_given_empty_for_every_product_are_stopped(
    write_feed, emptied, settings
):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREATE_ATTRIBUTES": True}
    items = [product(f"L-{i:02}", attributes={"colour": "Blue"}) for i in range(20)]
    assert sync_run_execute(write_feed(items, "first.json")).created == 20
    for item in items:
        item[emptied] = [] if emptied == "categories" else {}

    run = sync_run_execute(write_feed(items, "second.json"))

    assert run.status == SyncRun.Status.FAILED
    assert f"{emptied}: 20 of 20 matched products would be cleared, e.g. L-00 " in run.error
    assert (run.batches, run.updated) == (0, 0)
