"""Export, empty the shop, import the export: categories whose names hold the breadcrumb's
separators come back as the same one category, in JSON Lines and in CSV."""

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

    out = io.StringIO()
    call_command("export_products", "--format", fmt, stdout=out)
    exported = tmp_path / f"export.{fmt}"
    exported.write_text(out.getvalue(), encoding="utf-8")
    Product.objects.all().delete()
    Category.objects.all().delete()
    Partner.objects.all().delete()
    again = sync_run_execute(str(exported))

    assert (again.created, again.failed) == (2, 0), list(again.failure_set.values("message"))
    assert category_tree() == tree
    assert links() == linked
