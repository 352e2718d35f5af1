"""records: validation names the field at fault; fingerprints follow content."""

import pytest

from productsync.exceptions import RecordError
from productsync.ownership import record_fingerprint
from productsync.partial import partial_parse
from productsync.records import (
    FINGERPRINT_VERSION,
    Unparsed,
    raw_fingerprint,
    record_parse,
)
from tests.conftest import product


def first_stock(**fields):
    return [{"partner": "Acme", "partner_sku": "S1", **fields}]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"title": "x", "product_class": "Book"}, "upc: Field required"),
        (product("1", title=""), "title: is empty"),
        (product("1", title="t" * 256), "title: 'ttt.*' is longer than 255 characters"),
        (product("u" * 65), "upc: 'uuu.*' is longer than 64 characters"),
        (product("1", product_class=None), "product_class: null is not text"),
        (product("1", stockrecords=first_stock(price="-1")), "stockrecords[0].price"),
        (product("1", stockrecords=first_stock(price="1.234")), "decimal places"),
        (product("1", stockrecords=first_stock(price="abc")), "stockrecords[0].price"),
        (product("1", stockrecords=first_stock(currency="POUNDS")), "stockrecords[0].currency"),
        (product("1", stockrecords=first_stock(num_in_stock=-1)), "stockrecords[0].num_in_stock"),
        (product("1", stockrecords=[{"partner": "Acme"}]), "stockrecords[0].partner_sku"),
        (product("1", categories="Books"), "categories: 'Books' is not a list"),
        (product("1", is_public="maybe"), "is_public"),
        ([1, 2], "item must be an object, not an array"),
        (Unparsed("{oops", "line 3: not valid JSON"), "line 3: not valid JSON"),
    ],
)
def test_invalid_items_are_rejected_naming_the_field(item, message):
    with pytest.raises(RecordError, match=message.replace("[", r"\[").replace("]", r"\]")):
        record_parse(item)


def test_the_same_sku_twice_in_one_item_is_rejected():
    item = product("1", stockrecords=first_stock() + first_stock())
    with pytest.raises(RecordError, match="appears twice"):
        record_parse(item)


def test_valid_item_with_numbers_for_prices_and_unknown_keys():
    record = record_parse(
        product("1", stockrecords=first_stock(price=39.99, num_in_stock=None), colour="red")
    )
    assert str(record.stockrecords[0].price) == "39.99"
    assert record.stockrecords[0].num_in_stock is None
    assert record.is_public is True


@pytest.mark.parametrize("blank", ["", " ", "  \t\n "])
def test_a_title_is_kept_as_given_and_refused_when_blank(blank):
    record = record_parse(product("1", title="  Spaced  ", stockrecords=[]))
    assert record.title == "  Spaced  "
    assert record.product_class == "Book"  # other fields are stripped as ever
    assert record_parse(product("1", product_class=" Book ")).product_class == "Book"
    with pytest.raises(RecordError, match=r"^title: (is empty|'.*' is too short)$") as refused:
        record_parse(product("1", title=blank))
    assert refused.value.field == "title"
    with pytest.raises(RecordError, match=r"^title: ") as refused:
        partial_parse({"upc": "1", "title": blank})
    assert refused.value.field == "title"
    assert partial_parse({"upc": "1", "title": " P "}).values == {"title": " P "}
    # A child's blank title means none of its own: it shows its parent's.
    children = [{"upc": "C1", "title": blank}, {"upc": "C2", "title": " C "}]
    parent = record_parse(product("1", stockrecords=[], children=children))
    assert [child.title for child in parent.children] == ["", " C "]


def test_fingerprint_changes_with_content_only():
    a = record_parse(product("1"))
    assert record_fingerprint(a) == record_fingerprint(record_parse(product("1")))
    assert record_fingerprint(a) != record_fingerprint(record_parse(product("1", title="New")))


def test_raw_fingerprint_is_of_the_item_as_read_and_its_context():
    a = raw_fingerprint(product("1"), "GBP")
    assert a == raw_fingerprint(product("1"), "GBP") and a.startswith(FINGERPRINT_VERSION)
    assert len(a) <= 32  # SyncedProduct.fingerprint
    assert a != raw_fingerprint(product("1", title="New"), "GBP")
    assert a != raw_fingerprint(product("1"), "EUR")
    assert raw_fingerprint({"title": "lone \ud800"}) != raw_fingerprint({"title": "?"})
