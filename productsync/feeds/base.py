"""Opening a source as a counted byte stream and choosing the reader for its format."""

import io
import os
import stat
from collections.abc import Callable, Iterator
from typing import Any

from productsync.exceptions import FeedError, SourceError
from productsync.records import FeedItem

BOM = b"\xef\xbb\xbf"
# Byte-order marks of encodings that are not UTF-8, longest first (UTF-32 LE starts like UTF-16).
FOREIGN_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
# Bytes of text; a head with more than 5% other bytes (NUL, other controls) is binary. A few
# stray ones are left to the reader: they fail their own item, not the whole feed.
TEXT_BYTES = bytes(range(0x20, 0x100)) + b"\t\n\r\f\b\x1b"
# Items nested deeper than this are refused: deep nesting costs parsers memory or stack.
MAX_DEPTH = 64


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed item nests arrays/objects deeper than limit (iterative, no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


class CountingReader(io.RawIOBase):
    """A raw byte stream that counts what was read from it, for progress by bytes."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.raw.read(len(buffer))
        except OSError as exc:
            raise FeedError(f"cannot read the feed: {exc.strerror or exc}") from None
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class Feed:
    """An open feed: iterate it for FeedItems; bytes_read and totals feed the progress bar."""

    def __init__(
        self,
        name: str,
        raw,
        reader: Callable[[io.BufferedReader], Iterator[FeedItem]],
        total_items: int | None = None,
        bytes_total: int | None = None,
    ) -> None:
        self.name = name
        self._counter = CountingReader(raw)
        self.stream = io.BufferedReader(self._counter, buffer_size=64 * 1024)
        if self.stream.peek(3)[:3] == BOM:
            self.stream.read(3)
        self._reader = reader
        self.total_items = total_items
        self.bytes_total = bytes_total

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes_read

    def __iter__(self) -> Iterator[FeedItem]:
        return self._reader(self.stream)

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> "Feed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reader_for(name: str, fmt: str | None):
    from productsync.feeds import jsonfeed

    readers = {"json": jsonfeed.json_items, "jsonl": jsonfeed.jsonl_items}
    if fmt is None:
        lowered = name.lower()
        fmt = "jsonl" if lowered.endswith((".jsonl", ".ndjson")) else "json"
    if fmt not in readers:
        raise SourceError(f"{name}: unknown feed format {fmt!r} (known: {', '.join(readers)})")
    return fmt, readers[fmt]


def feed_sniff(feed: Feed) -> None:
    """Refuse, before any item is read, a feed that is unreadable, empty or not UTF-8 text."""
    try:
        head = feed.stream.peek(4096)
    except FeedError as exc:
        raise SourceError(f"{feed.name}: {exc}") from None
    for bom, encoding in FOREIGN_BOMS.items():
        if head.startswith(bom):
            raise SourceError(f"{feed.name}: the feed is {encoding}-encoded; expected UTF-8")
    if not head:
        raise SourceError(f"{feed.name}: the feed is empty")
    if len(head.translate(None, TEXT_BYTES)) > len(head) // 20:
        raise SourceError(f"{feed.name}: the feed is binary, not UTF-8 text")


def feed_open(source: str, fmt: str | None = None, count: bool = True) -> Feed:
    """Open a local feed file; with count, pre-count its items so progress shows a total.
    Only regular files are counted: a pipe or device can be read once."""
    fmt, reader = _reader_for(source, fmt)
    if os.path.isdir(source):
        raise SourceError(f"{source}: is a directory, not a feed file")
    try:
        raw = open(source, "rb")  # noqa: SIM115  (closed by Feed.close)
    except OSError as exc:
        raise SourceError(f"{source}: cannot open: {exc.strerror or exc}") from None
    info = os.fstat(raw.fileno())
    regular = stat.S_ISREG(info.st_mode)
    try:
        feed = Feed(source, raw, reader, bytes_total=info.st_size if regular else None)
        feed_sniff(feed)
    except (FeedError, SourceError) as exc:
        raw.close()
        raise SourceError(
            str(exc) if isinstance(exc, SourceError) else f"{source}: {exc}"
        ) from None
    if count and regular:
        with Feed(source, open(source, "rb"), reader) as counting:
            feed.total_items = _count(counting)
    return feed


def _count(feed: Feed) -> int | None:
    """Items in a feed, or None when it is malformed (the real pass reports where)."""
    try:
        return sum(1 for _ in feed)
    except FeedError:
        return None
