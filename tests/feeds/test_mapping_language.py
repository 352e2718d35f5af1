"""The mapping language on small CSV files: split, replace, fallback, cases, filter, attribute
codes and types, variants from rows (consecutive and by reference, over HTTP too), and what a
failure in a mapped feed tells its author."""

import contextlib
import json
import re
import tracemalloc

import pytest
from django.core.management import call_command
from oscar.core.loading import get_class, get_model

from productsync.exceptions import SourceError
from productsync.feeds import FeedOptions, feed_open
from productsync.models import SyncRun

Product = get_model("catalogue", "Product")
ProductAttribute = get_model("catalogue", "ProductAttribute")
Selector = get_class("partner.strategy", "Selector")


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def mapping(tmp_path, **tables) -> str:
    return write(tmp_path, "mapping.json", json.dumps(tables))


def sync(source: str, *args: str) -> SyncRun:
    """The command as a user runs it (it exits 1 when the run is not a success)."""
    with contextlib.suppress(SystemExit):
        call_command("sync_products", "--source", source, *args)
    return SyncRun.objects.latest("pk")


BASE = {"upc": "id", "title": "name", "product_class": {"value": "Thing"}}
STOCK = {"partner": {"value": "P"}, "partner_sku": "id", "price": "price", "num_in_stock": "qty"}


@pytest.mark.django_db
def test_split_replace_values_and_fallback(tmp_path):
    feed = write(
        tmp_path,
        "export.csv",
        'id,name,alt,cats\nA,Apple,,"Root/Fruit/Red,Root,Root/Sale"\nB,,Banana,Root/Fruit\n',
    )
    fields = {
        **BASE,
        "title": {"path": "name", "fallback": [{"path": "alt"}]},
        "categories": {
            "path": "cats",
            "split": ",",
            "replace": {"/": " > ", "Root > ": ""},
            "values": {"Root": ""},
        },
    }

    run = sync(feed, "--mapping", mapping(tmp_path, fields=fields))

    assert (run.created, run.failed) == (2, 0)
    apple, banana = Product.objects.order_by("upc")
    assert sorted(c.full_name for c in apple.categories.all()) == ["Fruit > Red", "Sale"]
    assert banana.title == "Banana"
    assert [c.full_name for c in banana.categories.all()] == ["Fruit"]


@pytest.mark.django_db
def test_cases_choose_fields_and_the_filter_skips_items(tmp_path):
    feed = write(
        tmp_path,
        "export.csv",
        "id,name,kind,price,qty\nA,Apple,fruit,1.00,\nB,Book,book,2.00,3\nC,Note,comment,,\n",
    )
    tables = {
        "fields": {**BASE, **STOCK},
        "class_options": {"track_stock": True},
        "cases": [
            {
                "when": {"path": "qty", "empty": True},
                "fields": {"product_class": {"value": "Loose"}},
                "class_options": {"track_stock": False},
            }
        ],
        "filter": {"skip": {"path": "kind", "equals": "comment"}},
    }

    run = sync(feed, "--mapping", mapping(tmp_path, **tables))

    assert (run.items, run.created) == (2, 2)
    assert "1 items skipped by the mapping's filter (kind equals 'comment')" in run.notes
    apple, book = Product.objects.order_by("upc")
    assert (apple.product_class.name, apple.product_class.track_stock) == ("Loose", False)
    assert (book.product_class.name, book.product_class.track_stock) == ("Thing", True)
    strategy = Selector().strategy()
    # No stock level, a class that does not track stock: buyable.
    assert strategy.fetch_for_product(apple).availability.is_available_to_buy


@pytest.mark.django_db
def test_attribute_codes_come_from_names_with_their_types(tmp_path):
    feed = write(
        tmp_path,
        "export.csv",
        'id,name,n1,v1,packed\nA,Shoe,Shoe size,42,"fit_type=Wide|Narrow,eco=Yes"\n',
    )
    tables = {
        "fields": BASE,
        "attributes": [
            {"name": "n1", "path": "v1", "type": "option"},
            {"pairs": "packed", "types": {"fit_type": "multi_option", "eco": "boolean"}},
        ],
    }

    run = sync(feed, "--mapping", mapping(tmp_path, **tables))

    assert (run.created, run.failed) == (1, 0)
    types = dict(ProductAttribute.objects.values_list("code", "type"))
    assert types == {"shoe_size": "option", "fit_type": "multi_option", "eco": "boolean"}
    shoe = Product.objects.get()
    assert shoe.attr.shoe_size.option == "42"
    assert sorted(o.option for o in shoe.attr.fit_type) == ["Narrow", "Wide"]
    assert shoe.attr.eco is True


VARIANTS = {
    "rows": "children",
    "fields": {"upc": "id", "title": "name", **STOCK},
    "attributes": [{"code": "size", "path": "size", "type": "option"}],
}


@pytest.mark.django_db
def test_children_listed_before_their_parent_are_grouped_by_reference(tmp_path):
    feed = write(
        tmp_path,
        "export.csv",
        "id,name,parent,kids,size,price,qty\n"
        "T-S,Tee S,,,S,5.00,1\n"
        "X,Lone,,,,3.00,2\n"
        "T,Tee,,T-S|T-M,,,\n"
        "T-M,Tee M,,,M,6.00,0\n"
        "U-1,Cup,U,,L,2.00,4\n"
        "U,Mug,,,,,\n",
    )
    tables = {
        "fields": {**BASE, **STOCK},
        "group": {"key": "id", "children": {"path": "kids", "split": "|"}, "parent": "parent"},
        "variants": VARIANTS,
    }

    run = sync(feed, "--mapping", mapping(tmp_path, **tables))

    assert (run.items, run.created, run.failed) == (3, 3, 0)
    family = {
        p.upc: (p.structure, p.parent.upc if p.parent else None) for p in Product.objects.all()
    }
    assert family == {
        "T": ("parent", None),
        "T-S": ("child", "T"),
        "T-M": ("child", "T"),
        "X": ("standalone", None),
        "U": ("parent", None),
        "U-1": ("child", "U"),
    }
    assert Product.objects.get(upc="T-M").attr.size.option == "M"


@pytest.mark.django_db
def test_an_http_source_is_grouped_by_reference(http_server, tmp_path):
    server = http_server()
    server.files["/export.csv"] = (
        b"id,name,parent,size,price,qty\nC-1,Cap S,C,S,1.00,1\nC,Cap,,,,\nC-2,Cap M,C,M,1.00,1\n",
        "text/csv",
    )
    tables = {
        "fields": {**BASE, **STOCK},
        "group": {"key": "id", "parent": "parent"},
        "variants": VARIANTS,
    }

    run = sync(f"{server.url}/export.csv", "--mapping", mapping(tmp_path, **tables))

    assert (run.items, run.created) == (1, 1)
    assert sorted(Product.objects.get(upc="C").children.values_list("upc", flat=True)) == [
        "C-1",
        "C-2",
    ]


@pytest.mark.django_db
def test_grouping_by_reference_keeps_memory_bounded(tmp_path):
    """20,000 rows, 200 products of 99 children each listed before their parent, are held
    on disk while grouped: the reader's peak memory is a fraction of the file's size."""
    note = "x" * 100
    lines = ["id,name,parent,note,size,price,qty"]
    for p in range(200):
        lines += [f"P{p}-{c},Child {c},P{p},{note},{c},1.00,1" for c in range(99)]
        lines.append(f"P{p},Parent {p},,{note},,,")
    path = write(tmp_path, "big.csv", "\n".join(lines) + "\n")
    tables = {
        "fields": {**BASE, **STOCK},
        "group": {"key": "id", "parent": "parent"},
        "variants": {**VARIANTS, "attributes": []},
    }
    size = (tmp_path / "big.csv").stat().st_size
    options = FeedOptions(mapping=mapping(tmp_path, **tables))

    tracemalloc.start()
    with feed_open(path, count=False, options=options) as feed:
        children = 0
        for item in feed:
            children += len(item.payload["children"])
            del item
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert children == 200 * 99
    # One product of 99 children is in memory at a time, not 20,000 rows.
    assert peak < size / 4


@pytest.mark.django_db
def test_a_failed_mapped_item_names_the_line_and_column_and_keeps_the_row(tmp_path):
    feed = write(tmp_path, "export.csv", "id,name,price,qty\nA,Apple,1.00,1\nB,Bad,abc,2\n")

    run = sync(feed, "--mapping", mapping(tmp_path, fields={**BASE, **STOCK}))

    assert (run.created, run.failed) == (1, 1)
    failure = run.failure_set.get()
    assert failure.message == "line 3, column 'price': stockrecords[0].price: 'abc' is not a number"
    assert (failure.upc, failure.field) == ("B", "stockrecords[0].price")
    assert json.loads(failure.raw_payload) == {
        "line": 3,
        "row": {"id": "B", "name": "Bad", "price": "abc", "qty": "2"},
    }


@pytest.mark.django_db
@pytest.mark.parametrize("cents", ["Infinity", "1e30", "-Infinity", "sNaN"])
def test_cents_of_no_finite_price_fail_their_item_on_one_line(tmp_path, cents):
    feed = write(tmp_path, "export.csv", f"id,name,cents\nA,Apple,100\nB,Bad,{cents}\n")
    fields = {**BASE, **STOCK, "price": {"path": "cents", "transform": "cents"}}
    fields.pop("num_in_stock")

    run = sync(feed, "--mapping", mapping(tmp_path, fields=fields))

    assert (run.status, run.created, run.failed) == ("completed_with_failures", 1, 1)
    message = run.failure_set.get().message
    assert message.startswith("line 3, column 'cents': stockrecords[0].price: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"fields": {**BASE, "title": {"path": 5}}}, "title: path must be text, not 5"),
        ({"fields": {**BASE, "title": {"path": ""}}}, "title: path must be text, not ''"),
        (
            {"fields": BASE, "cases": [{"when": {"path": "x"}}]},
            "cases[0]: when needs a path and one of equals",
        ),
        ({"fields": BASE, "variants": {"fields": {"upc": "id"}}}, "[variants] needs a [group]"),
        (
            {"fields": BASE, "attributes": [{"code": "Bad code", "path": "x"}]},
            "code 'Bad code' is not an attribute code",
        ),
        (
            {"fields": BASE, "attributes": [{"code": "c", "path": "x", "type": "colour"}]},
            "unknown attribute type 'colour'",
        ),
        ({"fields": {**BASE, "title": {"path": "n", "pattern": "("}}}, "pattern '('"),
    ],
)
def test_a_bad_mapping_is_one_clear_line(tmp_path, tables, message):
    path = mapping(tmp_path, **tables)
    feed = write(tmp_path, "export.csv", "id,name\nA,Apple\n")

    with pytest.raises(SourceError, match=re.escape(message)) as raised:
        feed_open(feed, options=FeedOptions(mapping=path))
    assert "\n" not in str(raised.value)


@pytest.mark.django_db
def test_an_unknown_preset_is_refused(tmp_path):
    feed = write(tmp_path, "export.csv", "id,name\nA,Apple\n")

    with pytest.raises(Exception, match="unknown preset 'prestashop'"):
        call_command("sync_products", "--source", feed, "--preset", "prestashop")


def test_references_that_lead_nowhere_leave_rows_on_their_own(tmp_path):
    """A parent key no row has, a parent that is itself a child, a cycle and a ragged row:
    each row still comes out once, on its own or under its parent."""
    feed = write(
        tmp_path,
        "export.csv",
        "id,name,parent,price,qty\n"
        "A,Orphan,NOPE,1.00,1\n"
        "B,Top,,,\n"
        "C,Middle,B,1.00,1\n"
        "D,Bottom,C,1.00,1\n"
        "E,Loop one,F,1.00,1\n"
        "F,Loop two,E,1.00,1\n"
        "G,Ragged\n",
    )
    tables = {
        "fields": {**BASE, **STOCK},
        "group": {"key": "id", "parent": "parent"},
        "variants": {**VARIANTS, "attributes": []},
    }

    with feed_open(feed, options=FeedOptions(mapping=mapping(tmp_path, **tables))) as f:
        items = [item.payload for item in f]

    shapes = [
        ("unparsed", p.message)
        if not isinstance(p, dict)
        else (p["upc"], len(p.get("children", [])))
        for p in items
    ]
    assert shapes == [
        ("A", 0),
        ("B", 1),
        ("D", 0),
        ("E", 0),
        ("F", 0),
        ("unparsed", "line 8: expected 5 fields, got 2"),
    ]
    assert items[1]["children"][0]["upc"] == "C"
