"""Opening a source as a counted byte stream and choosing the reader for its format."""

import codecs
import functools
import gzip
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from productsync.exceptions import FeedError, SourceError
from productsync.records import FeedItem

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
FORMATS = ("json", "jsonl", "csv", "oscar-csv")
EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
}
CONTENT_TYPES = {
    "application/json": "json",
    "text/json": "json",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "csv",
}


@dataclass(frozen=True)
class FeedOptions:
    """How to read a source when its name and content do not say it all."""

    format: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    mapping: str | None = None


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
        # HTTP validators of the response, and whether the server said 304 Not Modified.
        self.etag = ""
        self.last_modified = ""
        self.not_modified = False
        self._primed: tuple[list[FeedItem], Iterator[FeedItem], FeedError | None] | None = None

    def prime(self) -> None:
        """Read the first item now, so a feed unusable from its start (a CSV header without
        the required columns) raises SourceError at open; a FeedError waits for iteration."""
        items = self._reader(self.stream)
        try:
            first = [next(items)]
        except StopIteration:
            first = []
        except FeedError as exc:
            self._primed = ([], iter(()), exc)
            return
        self._primed = (first, items, None)

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes_read

    def __iter__(self) -> Iterator[FeedItem]:
        if self.not_modified:
            return iter(())
        if self._primed is not None:
            first, rest, error = self._primed
            self._primed = None
            return _replay(first, rest, error)
        return self._reader(self.stream)

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> "Feed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _replay(first: list[FeedItem], rest: Iterator[FeedItem], error: FeedError | None):
    if error is not None:
        raise error
    yield from first
    yield from rest


def feed_sniff(feed: Feed, fmt: str | None) -> None:
    """Refuse, before any item is read, a feed that is unreadable, empty or not text. JSON
    must be UTF-8; CSV may be UTF-16/32 (its reader decodes it); gzip is checked as it is
    decompressed."""
    try:
        head = feed.stream.peek(4096)
    except FeedError as exc:
        raise SourceError(f"{feed.name}: {exc}") from None
    if not head:
        raise SourceError(f"{feed.name}: the feed is empty")
    if head.startswith(GZIP_MAGIC):
        return
    for bom, encoding in FOREIGN_BOMS.items():
        if head.startswith(bom):
            if fmt in ("json", "jsonl"):
                raise SourceError(f"{feed.name}: the feed is {encoding}-encoded; expected UTF-8")
            return
    if len(head.translate(None, TEXT_BYTES)) > len(head) // 20:
        raise SourceError(f"{feed.name}: the feed is binary, not UTF-8 text")


def _gunzipped(reader):
    """Wrap a reader so a gzip-compressed stream (by its magic bytes) is read decompressed."""

    def read(stream: io.BufferedReader) -> Iterator[FeedItem]:
        if stream.peek(2)[:2] == GZIP_MAGIC:
            plain = io.BufferedReader(gzip.GzipFile(fileobj=stream, mode="rb"), 64 * 1024)
            try:
                if plain.peek(3)[:3] == BOM:
                    plain.read(3)
                yield from reader(plain)
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise FeedError(f"the gzip stream is corrupt or cut short: {exc}") from None
        else:
            yield from reader(stream)

    return read


def format_guess(name: str, content_type: str = "") -> str | None:
    """The feed format from a Content-Type, else from the name's extension (.gz ignored)."""
    media = content_type.split(";")[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    path = urlsplit(name).path if "://" in name else name
    path = path.lower().removesuffix(".gz")
    return EXTENSIONS.get(os.path.splitext(path)[1])


def _reader_for(name: str, options: FeedOptions, content_type: str = ""):
    from productsync.feeds import csvfeed, jsonfeed, mapping, oscarcsv

    fmt = options.format or format_guess(name, content_type)
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"{name}: unknown feed format {fmt!r} (known: {', '.join(FORMATS)})")
    if options.delimiter is not None and len(options.delimiter) != 1:
        raise SourceError(f"the CSV delimiter must be one character, not {options.delimiter!r}")
    if options.encoding is not None:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            raise SourceError(f"unknown encoding {options.encoding!r}") from None
    field_map = mapping.mapping_load(options.mapping) if options.mapping else None
    if fmt is None and field_map is not None:
        fmt = field_map.format
    csv_options = {"delimiter": options.delimiter, "encoding": options.encoding}
    readers = {
        "json": jsonfeed.json_items,
        "jsonl": jsonfeed.jsonl_items,
        "csv": functools.partial(csvfeed.csv_items, **csv_options),
        "oscar-csv": functools.partial(oscarcsv.oscar_items, **csv_options),
        None: functools.partial(_sniffed, csv_options=csv_options),
    }
    reader = readers[fmt]
    if field_map is not None:
        reader = field_map.reader(fmt, readers, csv_options)
    elif fmt == "csv" and options.format is None:
        # A .csv without our header is Oscar's headerless file, as oscar_import_catalogue reads.
        reader = functools.partial(csvfeed.csv_or_oscar_items, **csv_options)
    return fmt, _gunzipped(reader)


def _sniffed(stream: io.BufferedReader, csv_options: dict) -> Iterator[FeedItem]:
    """Neither name nor Content-Type tells: a JSON array, JSON Lines, else CSV."""
    from productsync.feeds import csvfeed, jsonfeed

    head = stream.peek(64).lstrip()[:1]
    if head == b"[":
        return jsonfeed.json_items(stream)
    if head == b"{":
        return jsonfeed.jsonl_items(stream)
    return csvfeed.csv_or_oscar_items(stream, **csv_options)


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def feed_open(
    source: str,
    fmt: str | None = None,
    count: bool = True,
    *,
    options: FeedOptions | None = None,
    validators: tuple[str, str] = ("", ""),
) -> Feed:
    """Open a local feed file or an http(s) URL. For a file, with count, pre-count its items
    so progress shows a total. For a URL, validators are the (ETag, Last-Modified) of the last
    successful run: an unchanged feed opens as not_modified without a body."""
    options = options or FeedOptions()
    if fmt is not None:
        options = FeedOptions(fmt, options.delimiter, options.encoding, options.mapping)
    if is_url(source):
        from productsync.feeds.http import http_open

        return http_open(source, options, validators)
    fmt, reader = _reader_for(source, options)
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
        feed_sniff(feed, fmt)
    except (FeedError, SourceError) as exc:
        raw.close()
        raise SourceError(
            str(exc) if isinstance(exc, SourceError) else f"{source}: {exc}"
        ) from None
    try:
        if count and regular:
            # Only regular files are counted: a pipe or a device can be read once.
            with Feed(source, open(source, "rb"), reader) as counting:
                feed.total_items = _count(counting)
        else:
            feed.prime()
    except SourceError:
        feed.close()
        raise
    return feed


def _count(feed: Feed) -> int | None:
    """Items in a feed, or None when it is malformed (the real pass reports where)."""
    try:
        return sum(1 for _ in feed)
    except FeedError:
        return None
