"""JSON array and JSON Lines readers, both incremental: memory stays flat as feeds grow."""

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import ijson

from productsync.exceptions import FeedError
from productsync.feeds.bounds import JsonArrayBounds, item_bound, line_read, line_too_long
from productsync.feeds.stream import MAX_DEPTH, depth_exceeds
from productsync.outcomes import FeedItem
from productsync.records import Unparsed, one_line, payload_dump

TOO_DEEP = f"the item is nested deeper than {MAX_DEPTH} levels"


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
    bounded = JsonArrayBounds(stream, item_bound())
    try:
        for payload in _array_items(ijson.basic_parse(bounded, use_float=True)):
            yield FeedItem(position, bounded.item_check(payload))
            position += 1
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        # yajl quotes the bytes around the error over several lines: keep one safe line.
        detail = one_line(exc)[:300]
        raise FeedError(f"malformed JSON after item {position}: {detail}") from None


def _attach(parent: dict | list, key: str | None, value: Any) -> None:
    if isinstance(parent, dict):
        parent[key] = value
    else:
        parent.append(value)


def _array_items(events) -> Iterator[Any]:
    """The elements of the top-level array, built from parser events (ijson.items keeps the
    prefix of every open level: see docs/benchmarks.md, Memory). An element nested deeper
    than MAX_DEPTH becomes Unparsed, its raw payload holding the first MAX_DEPTH levels."""
    next(events)  # the opening bracket, checked by the caller
    stack: list[dict | list] = []
    keys: list[str | None] = []
    depth = 0
    too_deep = False
    for event, value in events:
        if event == "map_key":
            if depth <= MAX_DEPTH:
                keys[-1] = value
        elif event in ("start_map", "start_array"):
            depth += 1
            if depth > MAX_DEPTH:
                too_deep = True
                continue
            node: dict | list = {} if event == "start_map" else []
            if stack:
                _attach(stack[-1], keys[-1], node)
            stack.append(node)
            keys.append(None)
        elif event in ("end_map", "end_array"):
            if depth == 0:  # the closing bracket of the feed: nothing may follow
                for _event in events:
                    raise FeedError("unexpected data after the closing bracket of the array")
                return
            if depth <= MAX_DEPTH:
                node = stack.pop()
                keys.pop()
            depth -= 1
            if depth == 0:
                yield Unparsed(payload_dump(node), TOO_DEEP) if too_deep else node
                too_deep = False
        elif depth == 0:
            yield value
        elif depth <= MAX_DEPTH:
            _attach(stack[-1], keys[-1], value)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def jsonl_items(stream: io.BufferedReader) -> Iterator[FeedItem]:
    """One JSON object per line; a line that is not JSON is one failed item, not the end."""
    position, lineno, bound = 0, 0, item_bound()
    while (read := line_read(stream, bound)) is not None:
        line, size = read
        lineno += 1
        if size:
            yield FeedItem(position, line_too_long(lineno, line, size, bound))
            position += 1
            continue
        if not line.strip():
            continue
        try:
            payload = json.loads(line, parse_float=_finite, parse_constant=_no_constant)
            if depth_exceeds(payload):
                raise ValueError(TOO_DEEP)
        except (ValueError, RecursionError) as exc:
            # Undecodable bytes stay visible as \xNN escapes in the kept text.
            text = line.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
            reason = TOO_DEEP if isinstance(exc, RecursionError) else exc
            payload = Unparsed(text, f"line {lineno}: not valid JSON: {reason}")
        yield FeedItem(position, payload)
        position += 1
    if position == 0:
        raise FeedError("the feed is empty: expected one JSON object per line")
