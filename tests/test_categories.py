"""Categories: the writer finds and creates them in bulk as Oscar's create_from_breadcrumbs
would one by one (same names, slugs, tree paths, child counts and public flags)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from oscar.core.loading import get_class, get_model

from productsync.models import SyncFailure
from productsync.services import sync_run_execute
from tests.conftest import product

Category = get_model("catalogue", "Category")
Product = get_model("catalogue", "Product")
create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")

# In feed order: new roots, new children of existing and of new nodes, a node under a
# hidden category, repeats, and names needing a slug of their own.
BREADCRUMBS = [
    ["Books > Computing > Python"],
    ["Music", "Books > Fiction"],
    ["Books > Computing > Django", "Hidden > Café Crème"],
    ["Books > Computing > Python", "Films > Science  Fiction > Space"],
    ["Books > Fiction > Crime", "Music > Jazz"],
]


def existing_tree() -> None:
    """A tree as a shop has it before the sync: a root with children, a hidden root."""
    create_from_breadcrumbs("Books > Computing > Databases")
    create_from_breadcrumbs("Books > History")
    hidden = create_from_breadcrumbs("Hidden")
    hidden.is_public = False
    hidden.save()


def tree() -> list[tuple]:
    return list(
        Category.objects.order_by("path").values_list(
            "path", "depth", "numchild", "name", "slug", "is_public", "ancestors_are_public"
        )
    )


def oscar_tree() -> list[tuple]:
    """The tree create_from_breadcrumbs makes from the same start, in the same order;
    rolled back."""
    with transaction.atomic():
        existing_tree()
        for categories in BREADCRUMBS:
            for breadcrumb in categories:
                create_from_breadcrumbs(breadcrumb)
        made = tree()
        transaction.set_rollback(True)
    return made


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [1, 2, 15])
def test_the_tree_is_the_one_oscar_would_make(write_feed, batch_size):
    expected = oscar_tree()
    existing_tree()
    items = [product(f"C-{i}", categories=c) for i, c in enumerate(BREADCRUMBS)]

    run = sync_run_execute(write_feed(items), batch_size=batch_size)

    assert run.created == len(items), run.notes
    assert tree() == expected
    names = {p.upc: sorted(c.full_name for c in p.categories.all()) for p in Product.objects.all()}
    assert names["C-3"] == ["Books > Computing > Python", "Films > Science  Fiction > Space"]
    python = Category.objects.get(name="Python")
    assert python.get_parent().get_parent().name == "Books"


@pytest.mark.django_db
def test_known_categories_are_read_once_per_run(write_feed):
    items = [product(f"K-{i}", categories=c) for i, c in enumerate(BREADCRUMBS)]
    sync_run_execute(write_feed(items, name="first.json"), batch_size=2)
    again = [{**item, "title": item["title"] + " (2nd ed.)"} for item in items]

    with CaptureQueriesContext(connection) as ctx:
        run = sync_run_execute(write_feed(again, name="second.json"), batch_size=2)

    assert run.updated == len(items)
    category_table = Category._meta.db_table
    reads = [q["sql"] for q in ctx.captured_queries if f'FROM "{category_table}"' in q["sql"]]
    assert len(reads) == 1, reads
    assert Category.objects.count() == len(tree())


@pytest.mark.django_db
def test_an_ambiguous_category_fails_its_item_only(write_feed):
    create_from_breadcrumbs("Books > Computing")
    books = Category.objects.get(name="Books")
    books.add_child(name="Computing")  # a second "Computing" under "Books"
    items = [
        product("A-1", categories=["Books > Computing"]),
        product("A-2", categories=["Books > Fiction"]),
    ]

    run = sync_run_execute(write_feed(items), batch_size=15)

    assert (run.created, run.failed) == (1, 1)
    failure = SyncFailure.objects.get()
    assert (failure.upc, failure.field) == ("A-1", "categories")
    assert "2 categories named 'Computing' under 'Books'" in failure.message
    assert list(Product.objects.values_list("upc", flat=True)) == ["A-2"]
