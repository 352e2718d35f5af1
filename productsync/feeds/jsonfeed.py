"""JSON array and JSON Lines readers, both incremental: memory stays flat as feeds grow."""

import io
import json
import math
from collections.abc import Iterator
from typing import Any

from productsync.exceptions import FeedError
from productsync.feeds.bounds import (
    PREVIEW,
    SHALLOW,
    JsonArrayBounds,
    item_bound,
    line_read,
    line_too_long,
)
from productsync.feeds.stream import (
    MAX_DEPTH,
    NOTED_FIELDS,
    NOTED_STOCK_FIELDS,
    depth_exceeds,
    may_nest_deeper,
    not_carried_note,
)
from productsync.outcomes import FeedItem
from productsync.records import Unparsed, one_line, payload_dump

TOO_DEEP = f"the item is nested deeper than {MAX_DEPTH} levels"
assert SHALLOW < MAX_DEPTH


def json_items(stream: io.BufferedReader, parse: bool = True) -> Iterator[FeedItem]:
    """Items of a top-level JSON array, each cut from the stream by its brackets (at most
    MAX_ITEM_BYTES held) and parsed by the C json module; each keeps its bytes as raw.
    Without parse, the items' payloads are None: a count of the elements, read quickly."""
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
        for element in bounded.elements():
            if not parse:
                yield FeedItem(position, None)
            elif isinstance(element, int):
                yield FeedItem(position, bounded.unparsed(element))
            else:
                raw = element[0].strip()
                yield FeedItem(position, _element_parse(raw, element[1]), raw)
            position += 1
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"malformed JSON after item {position}: {one_line(exc)[:300]}") from None
    if bounded.trailing:
        raise FeedError(
            f"malformed JSON after item {position}: parse error: trailing garbage after the "
            "closing bracket of the array"
        )
    if not bounded.closed:
        raise FeedError(f"malformed JSON after item {position}: premature EOF, the array is cut")


def _element_parse(raw: bytes, shallow: bool) -> Any:
    """One element of the array (shallow: known to nest less than MAX_DEPTH levels);
    ValueError when it is not JSON (the feed breaks there)."""
    try:
        payload = _DECODER.decode(raw.decode("utf-8"))
    except RecursionError:
        return Unparsed(raw[:PREVIEW].decode("utf-8", errors="backslashreplace"), TOO_DEEP)
    if not shallow and isinstance(payload, dict | list) and depth_exceeds(payload):
        return Unparsed(payload_dump(payload)[:PREVIEW], TOO_DEEP)
    return payload


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def jsonl_items(stream: io.BufferedReader, parse: bool = True) -> Iterator[FeedItem]:
    """One JSON object per line; a line that is not JSON is one failed item, not the end.
    Without parse, each item without its payload (to count them)."""
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
        if not parse:
            yield FeedItem(position, None)
            position += 1
            continue
        try:
            payload = json.loads(line, parse_float=_finite, parse_constant=_no_constant)
            if may_nest_deeper(line) and depth_exceeds(payload):
                raise ValueError(TOO_DEEP)
        except (ValueError, RecursionError) as exc:
            # Undecodable bytes stay visible as \xNN escapes in the kept text.
            text = line.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
            reason = TOO_DEEP if isinstance(exc, RecursionError) else exc
            payload = Unparsed(text, f"line {lineno}: not valid JSON: {reason}")
        yield FeedItem(position, payload, line.strip())
        position += 1
    if position == 0:
        raise FeedError("the feed is empty: expected one JSON object per line")


def absent_noted(items: Iterator[FeedItem], notes: list) -> Iterator[FeedItem]:
    """The items; once they are all read, notes name the fields some of them did not carry
    (left as they are), with how many items left each out."""
    counts: dict[str, int] = dict.fromkeys(NOTED_FIELDS + NOTED_STOCK_FIELDS, 0)
    read = 0
    for item in items:
        payload = item.payload
        if isinstance(payload, dict):
            read += 1
            left_out = {name for name in NOTED_FIELDS if name not in payload}
            records = payload.get("stockrecords")
            for record in records if isinstance(records, list) else ():
                if isinstance(record, dict):
                    left_out.update(n for n in NOTED_STOCK_FIELDS if n not in record)
            for name in left_out:
                counts[name] += 1
        yield item
    named = [f"{name} ({count} of {read} items)" for name, count in counts.items() if count]
    if named:
        notes.append(not_carried_note(named))
