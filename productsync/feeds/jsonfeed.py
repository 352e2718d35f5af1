"""JSON array and JSON Lines readers, both incremental: memory stays flat as feeds grow."""

import io
import json
from collections.abc import Iterator

import ijson

from productsync.exceptions import FeedError
from productsync.records import FeedItem, Unparsed


def json_items(stream: io.BufferedReader) -> Iterator[FeedItem]:
    """Items of a top-level JSON array, parsed one at a time."""
    while (head := stream.peek(1)[:1]) and head.isspace():
        stream.read(1)
    if not head:
        raise FeedError("the feed is empty: expected a JSON array of products")
    if head != b"[":
        kind = "an object" if head == b"{" else "not a JSON array"
        raise FeedError(
            f"the top level of the feed is {kind}: expected a JSON array of products "
            "(use a .jsonl file for one object per line)"
        )
    position = 0
    try:
        for payload in ijson.items(stream, "item", use_float=True):
            yield FeedItem(position, payload)
            position += 1
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise FeedError(f"malformed JSON after item {position}: {exc}") from None


def jsonl_items(stream: io.BufferedReader) -> Iterator[FeedItem]:
    """One JSON object per line; a line that is not JSON is one failed item, not the end."""
    position = 0
    for lineno, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            payload = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            payload = Unparsed(text, f"line {lineno}: not valid JSON: {exc}")
        yield FeedItem(position, payload)
        position += 1
