"""Export, empty the shop, import the export: categories whose names hold the breadcrumb's
separators come back as the same one category, and titles with surrounding spaces come back
exactly, in JSON Lines and in CSV."""

import io

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.services import sync_run_execute
from tests.conftest import product

pytestmark = pytest.mark.django_db

Product = get_model("catalogue", "Product")
Category = get_model("catalogue", "Category")
Partner = get_model("partner", "Partner")

NAMES = ["Sizes > Large / XL", "A|B", "back\\slash >", "ends in \\"]


def category_tree() -> set[tuple[str, ...]]:
    """Each category as the names from the root down."""
    out = set()
    for category in Category.objects.all():
        out.add(tuple(c.name for c in [*category.get_ancestors(), category]))
    return out


def links() -> dict[str, set[str]]:
    return {
        p.upc: {c.name for c in p.categories.all()}
        for p in Product.objects.prefetch_related("categories")
    }


def export(fmt: str, tmp_path) -> str:
    """The catalogue as export_products writes it in fmt, in a file; its path."""
    out = io.StringIO()
    call_command("export_products", "--format", fmt, stdout=out)
    exported = tmp_path / f"export.{fmt}"
    exported.write_text(out.getvalue(), encoding="utf-8")
    return str(exported)


def shop_empty() -> None:
    Product.objects.all().delete()
    Category.objects.all().delete()
    Partner.objects.all().delete()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_categories_named_with_separators_survive_export_and_import(fmt, tmp_path, write_feed):
    run = sync_run_execute(write_feed([product("P1"), product("P2")]))
    assert run.created == 2
    top = Category.add_root(name=NAMES[0])
    child = top.add_child(name=NAMES[1])
    grandchild = child.add_child(name=NAMES[2])
    other = Category.add_root(name=NAMES[3])
    Product.objects.get(upc="P1").categories.add(grandchild, other)
    Product.objects.get(upc="P2").categories.add(child)
    tree, linked = category_tree(), links()

    exported = export(fmt, tmp_path)
    shop_empty()
    again = sync_run_execute(exported)

    assert (again.created, again.failed) == (2, 0), list(again.failure_set.values("message"))
    assert category_tree() == tree
    assert links() == linked


SPACED = {"P1": "  Spaced title  ", "P2": " Leading space", "P3": "Trailing space \n"}
# JSON Lines only: children (no CSV columns), and a tab first (the CSV export marks a cell
# starting with one as text for spreadsheets, with a "'"). C2 has no title: its parent's.
JSONL_ONLY = {"P4": "\tTabbed title\t", "C1": "  Spaced child  ", "C2": ""}


def titles() -> dict[str, str]:
    return dict(Product.objects.values_list("upc", "title"))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_titles_with_surrounding_spaces_survive_export_and_import(fmt, tmp_path, write_feed):
    spaced = {**SPACED, **(JSONL_ONLY if fmt == "jsonl" else {})}
    items = [product(upc) for upc in spaced if upc.startswith("P")]
    if fmt == "jsonl":
        children = [product(upc, title="Child") for upc in ("C1", "C2")]
        for child in children:
            del child["product_class"], child["categories"]
        items.append(product("PARENT", stockrecords=[], children=children))
    run = sync_run_execute(write_feed(items))
    assert (run.created, run.failed) == (len(items), 0), list(run.failure_set.values("message"))
    for upc, title in spaced.items():
        Product.objects.filter(upc=upc).update(title=title)  # as the dashboard keeps it
    before = titles()

    exported = export(fmt, tmp_path)
    shop_empty()
    again = sync_run_execute(exported)

    assert (again.created, again.failed) == (len(items), 0), list(
        again.failure_set.values("message")
    )
    assert titles() == before
    if fmt == "jsonl":
        assert Product.objects.get(upc="C2").get_title() == "Product PARENT"
    # The titles read back are the ones written: reading the same file again (every item, and
    # comparing every value, or previewing it) changes none.
    for options in ({"full": True}, {"compare": True}, {"dry_run": True, "diff": True}):
        third = sync_run_execute(str(exported), **options)
        assert (third.unchanged, third.updated, third.failed) == (len(items), 0, 0), options
    assert titles() == before
