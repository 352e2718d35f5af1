"""A feed's author cannot stall a run: cells of many values, many rows of one product, rows
naming one another, and a mapping's patterns and nesting cost time in proportion to the input.
Times are measured in bench/dos.py; these tests count the work done, deterministically."""

import contextlib
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from productsync.exceptions import SourceError
from productsync.feeds import FeedOptions, feed_open
from productsync.feeds.csvfeed import items_merged
from productsync.feeds.mapping.diagnostics import SOURCE_ROWS_KEPT
from productsync.feeds.mapping.rules import Rule, unique
from productsync.models import SyncRun
from productsync.records import Unparsed
from tests.conftest import run_command


class Counted(str):
    """A text that counts how often it is compared for equality (list membership compares
    every element; a dict compares only values of the same hash) or hashed (a dict or set
    rebuilt from a list hashes every element again)."""

    comparisons = 0
    hashes = 0

    def __eq__(self, other):
        Counted.comparisons += 1
        return str.__eq__(self, other)

    def __hash__(self):
        Counted.hashes += 1
        return str.__hash__(self)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def items(tmp_path, feed: str, **options) -> list:
    with feed_open(feed, options=FeedOptions(**options)) as f:
        return [item.payload for item in f]


def test_many_values_in_one_cell_cost_in_proportion_to_them():
    values = [Counted(f"Category {i % 3000}") for i in range(6000)]
    Counted.comparisons = Counted.hashes = 0

    out = Rule(path="categories", values={"-": ""}).get(lambda path: values)

    assert out == [f"Category {i}" for i in range(3000)]
    # A few per value (the emptiness test, a duplicate found), not one per pair (18 million).
    assert Counted.comparisons <= 5 * len(values)


def test_unique_keeps_json_values_and_the_first_of_equal_ones_in_order():
    values = [{"b": 1, "a": 2}, "x", [1, 2], {"a": 2, "b": 1}, "", None, [1, 2], "x", "[1, 2]"]
    assert unique(values) == [{"b": 1, "a": 2}, "x", [1, 2], "[1, 2]"]


def test_a_split_cell_of_60000_values_is_read_whole(tmp_path):
    names = [f"C{i}" for i in range(60_000)]
    cell = ",".join(names + names[:100])
    feed = write(tmp_path, "export.csv", f'id,name,cats\nA,Apple,"{cell}"\n')
    fields = {
        "upc": "id",
        "title": "name",
        "product_class": {"value": "Thing"},
        "categories": {"path": "cats", "split": ","},
    }
    mapping = write(tmp_path, "mapping.json", json.dumps({"fields": fields}))

    (item,) = items(tmp_path, feed, mapping=mapping)

    # More than a product may have: the item fails, naming the field, in a moment.
    assert isinstance(item, Unparsed)
    assert item.field == "categories" and "at most 100" in item.message, item.message


def test_rows_of_one_upc_are_merged_at_the_cost_of_each_row():
    rows = 3000
    payloads = [
        {
            "upc": "P",
            "title": "Pan",
            "categories": [Counted(f"Pans > Size {i}")],
            "stockrecords": [{"partner": "Acme", "partner_sku": Counted(f"P-{i}"), "price": "1"}],
        }
        for i in range(rows)
    ]
    Counted.comparisons = Counted.hashes = 0

    (item,) = list(items_merged(payloads))

    assert item.payload["categories"] == [f"Pans > Size {i}" for i in range(rows)]
    assert [r["partner_sku"] for r in item.payload["stockrecords"]] == [
        f"P-{i}" for i in range(rows)
    ]
    # Each category and SKU hashed a few times, not once for every row after it (9 million).
    assert Counted.hashes + Counted.comparisons <= 10 * rows


def test_our_csv_with_thousands_of_rows_of_one_upc_is_one_item(tmp_path):
    header = "upc,title,product_class,categories,partner,partner_sku,price\n"
    body = "".join(f"P,Pan,Pans,Pans > Size {i},Acme,P-{i},1.00\n" for i in range(5000))
    feed = write(tmp_path, "feed.csv", header + body)

    (item,) = items(tmp_path, feed)

    assert len(item["categories"]) == len(item["stockrecords"]) == 5000
    assert item["stockrecords"][-1] == {
        "partner": "Acme",
        "partner_sku": "P-4999",
        "price": "1.00",
    }


MAGENTO_HEADER = (
    "sku,product_type,attribute_set_code,name,price,qty,configurable_variations,"
    "additional_attributes\n"
)


def magento_rows_sharing_a_sku(tmp_path, n: int) -> str:
    """n rows of sku P, each naming a different child, then the n children."""
    parents = "".join(f"P,configurable,Shirts,Shirt,,,sku=C{i},\n" for i in range(n))
    children = "".join(f"C{i},simple,Shirts,Shirt {i},9.50,3,,size=S{i}\n" for i in range(n))
    return write(tmp_path, "magento.csv", MAGENTO_HEADER + parents + children)


def test_rows_sharing_a_parent_sku_give_its_children_once(tmp_path):
    n = 300
    out = items(tmp_path, magento_rows_sharing_a_sku(tmp_path, n), preset="magento")

    products = [p for p in out if isinstance(p, dict)]
    # The first P row is the product with every child; the other P rows stand alone
    # (duplicates of P, refused as such by the run), and no child is left over.
    assert len(out) == n
    assert [len(p.get("children", [])) for p in products[:1]] == [n]
    assert sum(len(p.get("children", [])) for p in products) == n
    assert sorted(c["upc"] for c in products[0]["children"]) == sorted(f"C{i}" for i in range(n))


@pytest.mark.django_db
def test_a_dry_run_of_rows_sharing_a_sku_records_bounded_failures(tmp_path):
    n = 300
    path = Path(magento_rows_sharing_a_sku(tmp_path, n))
    bad = path.read_text(encoding="utf-8").replace("Shirt 250,9.50", "Shirt 250,abc")
    path.write_text(bad, encoding="utf-8")

    with contextlib.suppress(SystemExit):
        call_command("sync_products", "--source", str(path), "--preset", "magento", "--dry-run")
    run = SyncRun.objects.latest("pk")

    failures = list(run.failure_set.order_by("position").values_list("message", "raw_payload"))
    assert run.failed == n - 1
    message, raw = failures[0]
    assert message.startswith("line 552, column 'price': children[250].stockrecords[0].price")
    # The product's first rows, the row the message names, and how many were left out.
    rows = json.loads(raw)
    assert [r.get("line") for r in rows[:2]] == [2, 302]
    assert (rows[-2]["line"], rows[-2]["row"]["price"]) == (552, "abc")
    assert rows[-1] == {"rows_left_out": n + 1 - (SOURCE_ROWS_KEPT + 1)}
    # Each later P row fails alone as a duplicate, carrying its own row (not every child).
    assert {m for m, _ in failures[1:]} == {"upc: duplicate of the item at position 1"}
    # About 300 bytes a failure: the old grouping gave each of them all n children.
    assert sum(len(raw) for _, raw in failures) < 1000 * n


BASE = {"upc": "id", "title": "name", "product_class": {"value": "Thing"}}


def nested_condition(levels: int) -> dict:
    condition = {"path": "name", "equals": "Apple"}
    for _ in range(levels):
        condition = {"all": [condition]}
    return condition


@pytest.mark.django_db(transaction=True)
def test_conditions_nested_400_deep_are_a_bad_mapping_in_one_line(tmp_path):
    feed = write(tmp_path, "export.csv", "id,name\nA,Apple\n")
    cases = [{"when": nested_condition(400), "fields": {"title": {"value": "Pear"}}}]
    mapping = write(tmp_path, "mapping.json", json.dumps({"fields": BASE, "cases": cases}))

    result = run_command("sync_products", "--source", feed, "--mapping", mapping)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith(": cases[0].when is nested deeper than 32 tables and lists"), line


def test_a_toml_mapping_nested_beyond_the_parser_is_a_bad_mapping(tmp_path):
    feed = write(tmp_path, "export.csv", "id,name\nA,Apple\n")
    deep = "{ all = [ " * 2000 + '{ path = "name", equals = "A" }' + " ] }" * 2000
    mapping = write(
        tmp_path,
        "mapping.toml",
        'fields = { upc = "id", title = "name", product_class = { value = "T" } }\n'
        f'[[cases]]\nwhen = {deep}\nfields = {{ title = {{ value = "Pear" }} }}\n',
    )

    with pytest.raises(SourceError, match="nested deeper than 32 tables and lists"):
        feed_open(feed, options=FeedOptions(mapping=mapping))


def test_conditions_nested_a_dozen_deep_still_hold(tmp_path):
    feed = write(tmp_path, "export.csv", "id,name\nA,Apple\nB,Banana\n")
    cases = [{"when": nested_condition(12), "fields": {"title": {"value": "Pear"}}}]
    mapping = write(tmp_path, "mapping.json", json.dumps({"fields": BASE, "cases": cases}))

    assert [i["title"] for i in items(tmp_path, feed, mapping=mapping)] == ["Pear", "Banana"]


BACKTRACKING = "a" * 32 + "!"


def pattern_run(tmp_path, pattern: str):
    """A dry run, in its own process (a pattern that never ends cannot be interrupted within
    the process), of three rows whose code the pattern reads into the description."""
    feed = write(
        tmp_path,
        "export.csv",
        f"id,name,code\nA,Apple,{BACKTRACKING}\nB,Banana,{BACKTRACKING}\nC,Cherry,aaa\n",
    )
    fields = {**BASE, "description": {"path": "code", "pattern": pattern}}
    mapping = write(tmp_path, "mapping.json", json.dumps({"fields": fields}))
    result = run_command(
        "sync_products", "--source", feed, "--mapping", mapping, "--dry-run", "--json", timeout=90
    )
    return result, SyncRun.objects.latest("pk")


@pytest.mark.django_db(transaction=True)
def test_a_nested_repeat_in_a_mapping_pattern_ends(tmp_path):
    result, run = pattern_run(tmp_path, "^(a+)+$")

    assert (result.returncode, run.status, run.created) == (0, "succeeded", 3), result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_pattern_that_backtracks_fails_its_items_not_the_run(tmp_path):
    result, run = pattern_run(tmp_path, "^((?:a|a)*)$")

    assert (result.returncode, run.status, run.failed) == (1, "completed_with_failures", 3), (
        result.stderr
    )
    messages = list(run.failure_set.order_by("position").values_list("message", flat=True))
    assert messages[0] == (
        f"line 2: mapping {tmp_path / 'mapping.json'}: description: pattern '^((?:a|a)*)$' "
        "gave up after 0.5 s (it backtracks: write it without a repeat inside a repeat); "
        "every value it reads fails"
    )
    # Not tried again: the next items fail at once with the same message.
    assert [m.split(":", 1)[1] for m in messages] == [messages[0].split(":", 1)[1]] * 3
