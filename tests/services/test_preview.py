"""Previews (dry runs with a diff) and the changes of real runs: what each item would do or
did, field by field, stored as rows of the run."""

import io

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.models import SyncItem, SyncRun
from productsync.services import run_items, sync_run_execute
from tests.conftest import product

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")


def dry_run_diff(path: str, *args: str) -> tuple[SyncRun, str]:
    out = io.StringIO()
    try:
        call_command("sync_products", "--source", path, "--dry-run", "--diff", *args, stdout=out)
    except SystemExit as exc:
        assert exc.code == 1  # a run with failed items
    return SyncRun.objects.latest("pk"), out.getvalue()


def items(run: SyncRun) -> dict[str, SyncItem]:
    return {item.upc: item for item in SyncItem.objects.filter(run=run).order_by("position")}


def catalogue_feed(write_feed):
    sync_run_execute(write_feed([product("A"), product("B"), product("C")], "first.json"))
    changed = product("A", title="A, second edition")
    changed["stockrecords"][0]["price"] = "12.50"
    moved = product("C", categories=["Books > Fiction"], is_public=False)
    bad = product("E")
    del bad["title"]
    return write_feed([changed, product("B"), moved, product("D"), bad], "second.json")


def test_a_preview_records_every_item_with_its_changed_fields(write_feed):
    run, out = dry_run_diff(catalogue_feed(write_feed), "--batch-size", "2")
    assert (run.dry_run, run.items, run.created, run.updated, run.unchanged, run.failed) == (
        True,
        5,
        1,
        2,
        1,
        1,
    )
    rows = items(run)
    assert {upc: row.outcome for upc, row in rows.items()} == {
        "A": "updated",
        "B": "unchanged",
        "C": "updated",
        "D": "created",
        "E": "failed",
    }
    assert [row.position for row in rows.values()] == [0, 1, 2, 3, 4]
    assert rows["A"].changes == [
        ["title", "Product A", "A, second edition"],
        ["stockrecords[Acme Books/SKU-A].price", "10.00", "12.50"],
    ]
    assert rows["C"].changes == [
        ["categories", ["Books > Computing"], ["Books > Fiction"]],
        ["is_public", True, False],
    ]
    assert rows["B"].changes is None
    assert rows["E"].message.startswith("title: Field required")
    # Nothing was written.
    a = Product.objects.get(upc="A")
    assert a.title == "Product A" and str(a.stockrecords.get().price) == "10.00"
    assert not Product.objects.filter(upc="D").exists()
    # The terminal shows the same changes.
    assert "item 0 (A): updated" in out
    assert "stockrecords[Acme Books/SKU-A].price: '10.00' -> '12.50'" in out
    assert "is_public: True -> False" in out


def test_a_dry_run_finds_duplicates_across_batches_as_a_real_run_does(write_feed):
    feed = write_feed([product("X"), product("Y"), product("Z"), product("X", title="Again")])
    run, _ = dry_run_diff(feed, "--batch-size", "2")
    assert (run.created, run.failed) == (3, 1)
    failure = run.failure_set.get()
    assert (failure.position, failure.upc) == (3, "X")
    assert "duplicate of the item at position 0" in failure.message
    real = sync_run_execute(feed, batch_size=2)
    assert (real.created, real.failed) == (3, 1)
    assert real.failure_set.get().message == failure.message


def test_a_dry_run_without_diff_keeps_outcomes_but_no_changes(write_feed):
    path = catalogue_feed(write_feed)
    with pytest.raises(SystemExit):  # a run with failed items exits 1
        call_command("sync_products", "--source", path, "--dry-run", stdout=io.StringIO())
    run = SyncRun.objects.latest("pk")
    assert items(run)["A"].outcome == "updated" and items(run)["A"].changes is None


def test_children_and_attributes_changes(write_feed):
    parent = product("P", stockrecords=[])
    parent["children"] = [
        {"upc": "P-S", "title": "Small", "stockrecords": [product("P-S")["stockrecords"][0]]},
        {"upc": "P-M", "title": "Medium"},
    ]
    sync_run_execute(write_feed([parent], "first.json"))
    parent["children"][0]["stockrecords"][0]["num_in_stock"] = 0
    parent["children"] = [parent["children"][0], {"upc": "P-L", "title": "Large"}]
    run, _ = dry_run_diff(write_feed([parent], "second.json"))
    assert items(run)["P"].changes == [
        ["children[P-S].stockrecords[Acme Books/SKU-P-S].num_in_stock", 5, 0],
        ["children[P-M].is_public", True, False],
        ["children[P-L].title", None, "Large"],
        ["children[P-L].description", None, ""],
        ["children[P-L].is_public", None, True],
    ]


def test_a_real_run_records_the_changes_of_its_updated_items(write_feed, settings):
    path = catalogue_feed(write_feed)
    run = sync_run_execute(path, batch_size=2)
    assert run.updated == 2
    rows = items(run)
    assert set(rows) == {"A", "C"}  # only the updated items of a real run
    assert rows["A"].changes[1] == ["stockrecords[Acme Books/SKU-A].price", "10.00", "12.50"]
    assert Product.objects.get(upc="A").title == "A, second edition"


def test_the_changes_of_a_real_run_are_bounded_by_a_setting(write_feed, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CHANGES_MAX": 1}
    run = sync_run_execute(catalogue_feed(write_feed), batch_size=2)
    assert run.updated == 2
    assert list(SyncItem.objects.filter(run=run).values_list("upc", flat=True)) == ["A"]
    assert any("changes of 1 updated item not recorded" in note for note in run.notes)


def test_a_preview_shows_what_each_created_item_would_be(write_feed):
    parent = product("SHIRT", title="Shirt <b>bold</b>", product_class="Clothing", stockrecords=[])
    parent["children"] = [
        {
            "upc": f"SHIRT-{i}",
            "title": f"Shirt {i}",
            "stockrecords": [{**product(f"S{i}")["stockrecords"][0], "price": f"2{i}.00"}],
        }
        for i in range(7)
    ]
    run, out = dry_run_diff(write_feed([product("BOOK"), parent]))
    rows = items(run)
    assert rows["BOOK"].changes == [
        ["title", None, "Product BOOK"],
        ["product_class", None, "Book"],
        ["stockrecords[Acme Books/SKU-BOOK].price", None, "10.00"],
        ["stockrecords[Acme Books/SKU-BOOK].num_in_stock", None, 5],
    ]
    facts = rows["SHIRT"].changes
    assert facts[:3] == [
        ["title", None, "Shirt <b>bold</b>"],
        ["product_class", None, "Clothing"],
        ["children", None, 7],
    ]
    # The first five children are shown with their title, price and stock; the count says
    # how many there are.
    assert facts[3:6] == [
        ["children[SHIRT-0].title", None, "Shirt 0"],
        ["children[SHIRT-0].stockrecords[Acme Books/SKU-S0].price", None, "20.00"],
        ["children[SHIRT-0].stockrecords[Acme Books/SKU-S0].num_in_stock", None, 5],
    ]
    assert len(facts) == 3 + 5 * 3
    assert (rows["SHIRT"].title, rows["BOOK"].title) == ("Shirt <b>bold</b>", "Product BOOK")
    assert "item 0 (BOOK): created\n    title: 'Product BOOK'\n" in out
    assert "    stockrecords[Acme Books/SKU-BOOK].price: '10.00'\n" in out
    assert "    children: 7\n" in out
    assert not Product.objects.exists()


def test_a_preview_is_searched_by_upc_sku_or_title_in_any_case(write_feed):
    parent = product("TEE", title="Plain tee", stockrecords=[])
    parent["children"] = [{"upc": "TEE-RED", "stockrecords": [product("X")["stockrecords"][0]]}]
    feed = [product("BOOK-1", title="Deep 100% Work"), product("BOOK_2"), parent]
    run, _ = dry_run_diff(write_feed(feed))

    def found(search: str, outcome: str = "") -> list[str]:
        return [row.upc for row in run_items(run, outcome, search).order_by("position")]

    assert found("book") == ["BOOK-1", "BOOK_2"]
    assert found("sku-book_2") == ["BOOK_2"]  # a SKU; "_" is no wildcard
    assert found("100%") == ["BOOK-1"]  # a title; "%" is no wildcard
    assert found("tee-red") == ["TEE"] and found("SKU-X") == ["TEE"]  # a child's UPC, SKU
    assert found("  plain TEE ") == ["TEE"]
    assert found("book", "updated") == [] and found("nothing") == []
    assert found("B" + "x" * 200) == found("B" + "x" * 99) == []
