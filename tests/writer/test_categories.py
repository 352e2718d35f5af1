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
    """Every column of every category but its id, in tree order."""
    columns = [f.attname for f in Category._meta.concrete_fields if not f.primary_key]
    return list(Category.objects.order_by("path").values_list(*columns))


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
        # Every product renamed: a mass change let through (the guard reads ahead apart).
        run = sync_run_execute(
            write_feed(again, name="second.json"), batch_size=2, allow_mass_change=True
        )

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


@pytest.mark.django_db
def test_a_category_added_by_someone_else_during_the_run_is_not_overwritten(write_feed):
    """The run's tree is read once; a category another process adds under a known parent
    takes the path the run planned next. The batch is then written again item by item with
    the tree read afresh, and every item lands."""
    items = [
        product("S-1", categories=["Books > Atlases"]),
        product("S-2", categories=["Books > Cookery"]),
    ]
    added = []

    def someone_else(run, result):
        if not added:
            added.append(create_from_breadcrumbs("Books > Bestsellers"))

    run = sync_run_execute(write_feed(items), batch_size=1, on_batch=someone_else)

    assert (run.created, run.failed) == (2, 0), run.notes
    books = Category.objects.get(name="Books")
    assert [c.name for c in books.get_children()] == ["Atlases", "Bestsellers", "Cookery"]
    assert books.numchild == 3
    cookery = Product.objects.get(upc="S-2").categories.get()
    assert cookery.full_name == "Books > Cookery"


@pytest.mark.django_db
def test_a_fork_that_sorts_siblings_gets_its_categories_from_oscar(write_feed, monkeypatch):
    """treebeard renumbers sorted siblings on every insert: no path can be planned, so each
    category is created through Oscar, in its sorted place."""
    monkeypatch.setattr(Category, "node_order_by", ["name"])
    items = [
        product("O-1", categories=["Books > Zoology"]),
        product("O-2", categories=["Books > Algebra", "Books > Zoology"]),
    ]

    run = sync_run_execute(write_feed(items), batch_size=15)

    assert run.created == 2, run.notes
    books = Category.objects.get(name="Books")
    assert [c.name for c in books.get_children()] == ["Algebra", "Zoology"]
    names = sorted(c.full_name for c in Product.objects.get(upc="O-2").categories.all())
    assert names == ["Books > Algebra", "Books > Zoology"]


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_key_without_a_sequence_of_its_own_is_returned_by_insert(write_feed):
    """PostgreSQL takes new ids from the key's sequence before a COPY; a table whose key has
    no sequence of its own (not made by Django's migrations) is written by INSERT instead."""
    from productsync import sql as writer

    table = connection.ops.quote_name(Category._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY; "
            "CREATE SEQUENCE test_free_category_ids START 1000; "
            f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('test_free_category_ids')"
        )
    items = [product("N-1", categories=["Maps > Europe > Alps", "Maps > Asia"])]
    try:
        run = sync_run_execute(write_feed(items), batch_size=15)
    finally:
        writer._NO_SEQUENCE.discard(Category)

    assert run.created == 1, run.notes
    assert sorted(Category.objects.values_list("pk", flat=True)) == [1000, 1001, 1002, 1003]
    names = sorted(c.full_name for c in Product.objects.get(upc="N-1").categories.all())
    assert names == ["Maps > Asia", "Maps > Europe > Alps"]


@pytest.mark.django_db
def test_the_planner_reads_the_tree_again_when_a_planned_path_was_taken():
    """A queue run's planner creates the categories before enqueueing the batches; one added
    by someone else meanwhile makes it read the tree again, not stop planning."""
    from productsync.records import record_parse
    from productsync.writer import BatchWriter

    writer = BatchWriter(1, "feed.json", "GBP")
    writer.prepare([record_parse(product("P-1", categories=["Books > Atlases"]))])
    create_from_breadcrumbs("Books > Bestsellers")

    writer.prepare([record_parse(product("P-2", categories=["Books > Cookery"]))])

    books = Category.objects.get(name="Books")
    assert [c.name for c in books.get_children()] == ["Atlases", "Bestsellers", "Cookery"]
    assert books.numchild == 3
