"""A feed's author cannot stall a run: cells of many values, many rows of one product, rows
naming one another, and a mapping's patterns and nesting cost time in proportion to the input.
Times are measured in bench/dos.py; these tests count the work done, deterministically."""

import json

from productsync.feeds import FeedOptions, feed_open
from productsync.feeds.rules import Rule, unique
from productsync.records import Unparsed


class Counted(str):
    """A text that counts how often it is compared for equality (list membership compares
    every element; a dict compares only values of the same hash)."""

    comparisons = 0

    def __eq__(self, other):
        Counted.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def items(tmp_path, feed: str, **options) -> list:
    with feed_open(feed, options=FeedOptions(**options)) as f:
        return [item.payload for item in f]


def test_many_values_in_one_cell_cost_in_proportion_to_them():
    values = [Counted(f"Category {i % 3000}") for i in range(6000)]
    Counted.comparisons = 0

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
