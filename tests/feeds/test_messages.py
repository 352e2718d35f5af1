"""Every message a feed can give a shop team, collected from the readers, the mappings and the
validation over a corpus of bad rows and files, checked against the rules they are written by:
the bad value quoted, no library phrases, no word doubled, no command-line flags."""

import csv
import re

import pytest

from productsync.exceptions import ProductSyncError, RecordError
from productsync.feeds import FeedOptions, feed_open, url_password_refuse
from productsync.partial import partial_parse
from productsync.records import Unparsed, record_parse
from tests.conftest import product, shared_data
from tests.feeds.test_xlsx import workbook_of

LIBRARY_PHRASES = ("Input should", "String should", "valid decimal", "valid integer", "Value error")


def stock(**fields) -> list[dict]:
    return [{"partner": "Acme", "partner_sku": "S1", **fields}]


BAD_ITEMS = [
    product("1", stockrecords=stock(price="abc")),
    product("1", stockrecords=stock(price="-1")),
    product("1", stockrecords=stock(price="1.234")),
    product("1", stockrecords=stock(price="1_000")),
    product("1", stockrecords=stock(num_in_stock="many")),
    product("1", stockrecords=stock(num_in_stock=1.5)),
    product("1", stockrecords=stock(num_in_stock=-1)),
    product("1", stockrecords=stock(currency="POUNDS")),
    product("1", title=""),
    product("1", title="t" * 300),
    product("u" * 70),
    product("1", product_class=None),
    product("1", categories="Books"),
    product("1", is_public="maybe"),
    product("1", images=[5]),
    product("1", attributes={"weight": [1]}),
    [1, 2],
    "text",
]
BAD_STOCK_ROWS = [
    {"upc": "1", "price": "abc"},
    {"partner_sku": "S", "partner": "Acme", "price": "abc"},
    {"partner_sku": "S", "partner": "Acme", "num_in_stock": "lots"},
    {"partner_sku": "S", "partner": "Acme", "price": "-3"},
]


def item_messages() -> list[str]:
    out = []
    for item in BAD_ITEMS:
        with pytest.raises(RecordError) as failure:
            record_parse(item)
        out.append(str(failure.value))
    for row in BAD_STOCK_ROWS:
        with pytest.raises(RecordError) as failure:
            partial_parse(row)
        out.append(str(failure.value))
    return out


def write_csv(path, header: list[str], rows: list[list[str]]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def without_column(source, column: str, target) -> str:
    with open(source, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    header = [name for name in rows[0] if name != column]
    return write_csv(target, header, [[row[name] for name in header] for row in rows])


def read_messages(path: str, **options) -> tuple[list[str], list[str]]:
    """(the messages of a feed's items and of the feed, the notes its reading left)."""
    out, notes = [], []
    try:
        with feed_open(path, count=False, **options) as feed:
            for item in feed:
                if isinstance(item.payload, Unparsed):
                    out.append(item.payload.message)
                    continue
                try:
                    record_parse(item.payload)
                except RecordError as exc:
                    out.append(str(exc))
            notes = list(feed.notes)
    except ProductSyncError as exc:
        out.append(str(exc))
    return out, notes


def feed_messages(tmp_path) -> list[str]:

    shopify = shared_data("shopify/product_template.csv")
    out = []
    for options in (FeedOptions(preset="woocommerce"), FeedOptions(preset="magento")):
        out += read_messages(str(shopify), options=options)[0]
    headerless = write_csv(tmp_path / "odd.csv", ["a", "b", "c"], [["1", "2", "3"]])
    out += read_messages(headerless)[0]
    stock_file = write_csv(tmp_path / "stock.csv", ["sku", "num_in_stock"], [["S", "3"]])
    out += read_messages(stock_file, options=FeedOptions(partial=True))[0]
    ragged = write_csv(tmp_path / "ragged.csv", ["upc", "title"], [["1", "A", "extra"]])
    out += read_messages(ragged)[0]
    plain_xml = tmp_path / "items.xml"
    plain_xml.write_text("<items><item><sku>1</sku></item></items>", encoding="utf-8")
    out += read_messages(str(plain_xml))[0]
    sheet = workbook_of([["sku", "name"], ["1", "A"]], tmp_path / "odd.xlsx")
    out += read_messages(str(sheet))[0]
    with pytest.raises(ProductSyncError) as refused:
        url_password_refuse("http://reader:secret@127.0.0.1:9/feed.csv")
    out.append(str(refused.value))
    return out


def test_a_bad_value_is_quoted_with_what_was_expected():
    messages = item_messages()
    assert "stockrecords[0].price: 'abc' is not a number" in messages
    assert "stockrecords[0].num_in_stock: 'many' is not a whole number" in messages
    assert "stockrecords[0].num_in_stock: 1.5 is not a whole number" in messages
    assert "stockrecords[0].price: '-1' is less than 0" in messages
    assert "price: 'abc' is not a number" in messages


def test_every_message_follows_the_rules(tmp_path):
    messages = item_messages() + feed_messages(tmp_path)
    assert len(messages) >= len(BAD_ITEMS) + len(BAD_STOCK_ROWS) + 7
    for message in messages:
        assert not any(phrase in message for phrase in LIBRARY_PHRASES), message
        assert not re.search(r"\b([\w ()]+), \1\b", message), message
        assert not re.search(r"(^|[\s(])--[a-z]", message), message
        assert "the mapping woocommerce preset" not in message and "mapping the " not in message
        assert "preset preset" not in message, message
    assert any(message.startswith("an XML feed needs a mapping") for message in messages)
    assert any(message.startswith("the sheet has no upc column") for message in messages)
    assert any("carries a password" in message for message in messages)


def test_a_wrong_preset_names_the_missing_column_once(tmp_path):

    shopify = str(shared_data("shopify/product_template.csv"))
    [message] = read_messages(shopify, options=FeedOptions(preset="woocommerce"))[0]
    assert message.startswith("the CSV header has no SKU column (it has Handle, ")
    assert message.endswith(": the woocommerce preset reads it")


@pytest.mark.parametrize(
    ("path", "preset", "column"),
    [
        ("shopify/product_template.csv", "shopify", "Body (HTML)"),
        ("woocommerce/sample_products.csv", "woocommerce", "Regular price"),
        ("magento/configurable_products.csv", "magento", "additional_attributes"),
    ],
)
def test_an_export_missing_one_column_is_still_recognised(tmp_path, path, preset, column):
    copy = without_column(shared_data(path), column, tmp_path / "export.csv")
    messages, notes = read_messages(copy)
    assert notes[0] == f"mapping: the {preset} preset, detected from the CSV header"
    assert any(f"without the column {column}" in note for note in notes), notes
    assert not any("fields, not Oscar's" in message for message in messages)
