"""JSON and JSON Lines readers: streaming, totals, and clear errors for broken feeds."""

import pytest

from productsync.exceptions import FeedError, SourceError
from productsync.feeds import feed_open
from productsync.records import Unparsed
from tests.conftest import FIXTURES, product


def read(path):
    with feed_open(path) as feed:
        return feed.total_items, list(feed)


def test_json_array_items_have_positions_and_a_total():
    total, items = read(str(FIXTURES / "products.json"))
    assert total == 194
    assert [i.position for i in items] == list(range(194))
    assert items[0].payload["upc"]


def test_jsonl_and_json_give_the_same_items(write_feed):
    feed = [product("1"), product("2", title="Café Crème")]
    assert read(write_feed(feed, "a.jsonl"))[1] == read(write_feed(feed, "a.json"))[1]


def test_a_bad_jsonl_line_is_one_unparsed_item_not_the_end(tmp_path):
    path = tmp_path / "feed.ndjson"
    path.write_text('{"upc": "1"}\n\n{not json\n{"upc": "3"}\n', encoding="utf-8")
    total, items = read(str(path))
    assert total == 3
    assert isinstance(items[1].payload, Unparsed)
    assert items[1].payload.text == "{not json"
    assert "line 3" in items[1].payload.message
    assert items[2].payload == {"upc": "3"}


def test_a_jsonl_item_nested_too_deep_fails_alone_and_is_counted(tmp_path):
    def nested(levels: int) -> str:  # the item is level 1, each list one more
        return '{"upc": "X", "junk": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    path = tmp_path / "deep.jsonl"
    brackets = '{"upc": "B", "title": "' + "[{" * 100 + '"}'  # shallow, bracketed text
    path.write_text("\n".join([nested(64), nested(65), brackets, nested(3000)]) + "\n")

    total, items = read(str(path))

    assert total == 4
    assert items[0].payload["upc"] == "X" and items[2].payload["upc"] == "B"
    for deep in (items[1], items[3]):
        assert isinstance(deep.payload, Unparsed)
        assert "nested deeper than 64 levels" in deep.payload.message


def test_utf8_bom_is_skipped(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'[{"upc": "1"}]')
    assert read(str(path))[1][0].payload == {"upc": "1"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"  \n ", "the feed is empty"),
        (b'{"upc": "1"}', "top level of the feed is an object"),
        (b'"text"', "not a JSON array"),
    ],
)
def test_unusable_json_is_a_feed_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with feed_open(str(path)) as feed, pytest.raises(FeedError, match=message):
        list(feed)


def test_truncated_json_yields_the_items_before_the_break(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('[{"upc": "1"}, {"upc": "2"}, {"upc": "3", "ti', encoding="utf-8")
    seen = []
    with feed_open(str(path)) as feed, pytest.raises(FeedError, match="after item 2"):
        for item in feed:
            seen.append(item.payload["upc"])
    assert seen == ["1", "2"]


def test_an_empty_file_is_refused_at_open(tmp_path):
    path = tmp_path / "empty.json"
    path.write_bytes(b"")
    with pytest.raises(SourceError, match="the feed is empty"):
        feed_open(str(path))


def test_missing_file_and_directory_are_source_errors(tmp_path):
    with pytest.raises(SourceError, match="cannot open"):
        feed_open(str(tmp_path / "missing.json"))
    with pytest.raises(SourceError, match="is a directory"):
        feed_open(str(tmp_path))
