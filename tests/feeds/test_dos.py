"""A feed's author cannot stall a run: cells of many values, many rows of one product, rows
naming one another, and a mapping's patterns and nesting cost time in proportion to the input.
Times are measured in bench/dos.py; these tests count the work done, deterministically."""

import json

from productsync.feeds import FeedOptions, feed_open
from productsync.feeds.csvfeed import items_merged
from productsync.feeds.rules import Rule, unique
from productsync.records import Unparsed


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
