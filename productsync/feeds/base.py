"""Opening a source as a counted byte stream and choosing the reader for its format."""

import io
import os
from collections.abc import Callable, Iterator

from productsync.exceptions import SourceError
from productsync.records import FeedItem

BOM = b"\xef\xbb\xbf"


class CountingReader(io.RawIOBase):
    """A raw byte stream that counts what was read from it, for progress by bytes."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
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


def feed_open(source: str, fmt: str | None = None, count: bool = True) -> Feed:
    """Open a local feed file; with count, pre-count its items so progress shows a total."""
    fmt, reader = _reader_for(source, fmt)
    if os.path.isdir(source):
        raise SourceError(f"{source}: is a directory, not a feed file")
    try:
        raw = open(source, "rb")  # noqa: SIM115  (closed by Feed.close)
    except OSError as exc:
        raise SourceError(f"{source}: cannot open: {exc.strerror or exc}") from None
    total = None
    if count:
        with Feed(source, open(source, "rb"), reader) as counting:
            total = _count(counting)
    return Feed(source, raw, reader, total_items=total, bytes_total=os.fstat(raw.fileno()).st_size)


def _count(feed: Feed) -> int | None:
    """Items in a feed, or None when it is malformed (the real pass reports where)."""
    from productsync.exceptions import FeedError

    try:
        return sum(1 for _ in feed)
    except FeedError:
        return None
