"""The types every reader needs: Feed, FeedOptions, the counted byte stream, gzip and BOMs."""

import gzip
import io
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from productsync.exceptions import FeedError, SourceError
from productsync.outcomes import FeedItem

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
# A ZIP archive: an Excel workbook (.xlsx) is one.
ZIP_MAGIC = b"PK\x03\x04"
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

Reader = Callable[[io.BufferedReader], Iterator[FeedItem]]


@dataclass(frozen=True)
class FeedOptions:
    """How to read a source when its name and content do not say it all."""

    format: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    mapping: str | None = None
    # A mapping shipped for a platform's export: shopify, woocommerce or magento.
    preset: str | None = None
    # Partial runs: a CSV is read by its upc or sku column (a stock file), and rows with no
    # partner cell take partner.
    partial: bool = False
    partner: str | None = None
    # Remote sources (SFTP, FTP, S3): the name of their PRODUCTSYNC["CREDENTIALS"] entry, the
    # user name the URL gave (the source's one name leaves it out), and the folder on the same
    # server that a file read in full is moved to.
    credentials: str | None = None
    username: str | None = None
    archive_to: str | None = None
    # A workbook's sheet by name (default: the first).
    sheet: str | None = None
    # The folder a grouped CSV's row index is written in (the run's own); None: the system's
    # temporary folder.
    temp_dir: str | None = None
    # Called now and then while the feed is counted or its rows grouped, before any item
    # comes out (a heartbeat: those passes take a minute for a million rows).
    beat: Callable[[], None] | None = None


class Validators(NamedTuple):
    """The HTTP validators of a feed's last successful response."""

    etag: str = ""
    last_modified: str = ""


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


# Fields of data an item may leave out, named in the run's notes when some do (is_public
# and currency, which most feeds leave to their defaults, are not named); the stock ones
# only of items with stock records.
NOTED_FIELDS = ("description", "categories")
NOTED_STOCK_FIELDS = ("price", "num_in_stock")


def not_carried_note(named: list[str]) -> str:
    """The run's note naming the fields (with how they are missing) a feed did not carry."""
    return f"the feed did not carry: {', '.join(named)} — left as they were"


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed item nests arrays/objects deeper than limit (iterative, no recursion)."""
    containers = (dict, list)
    stack = [(value, 1)] if isinstance(value, containers) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, containers))
    return False


def may_nest_deeper(text: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON text could nest deeper than limit: not when it opens no more arrays and
    objects than that in all (a check in C, sparing most items depth_exceeds's walk)."""
    return text.count(b"[") + text.count(b"{") > limit


def _file_error(exc: Exception, bytes_read: int) -> FeedError:
    return FeedError(f"cannot read the feed: {getattr(exc, 'strerror', None) or exc}")


class ByteStream(io.RawIOBase):
    """A raw byte stream over a read(n) callable, counting the bytes it gave (bytes_read).
    An exception of the kinds in `errors` raised by read becomes translate(exc, bytes_read);
    on_close runs when the stream is closed."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        *,
        errors: tuple[type[BaseException], ...] = (),
        translate: Callable[[Exception, int], Exception] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._read = read
        self._errors = errors
        self._translate = translate
        self._on_close = on_close
        self.bytes_read = 0

    @classmethod
    def of_file(cls, raw) -> "ByteStream":
        """Over a binary file; an OSError reading it is a FeedError."""
        return cls(raw.read, errors=(OSError,), translate=_file_error, on_close=raw.close)

    @classmethod
    def of_chunks(cls, chunks: Iterable[bytes]) -> "ByteStream":
        """Over an iterator of byte strings, read as they come."""
        chunks = iter(chunks)
        pending = b""

        def read(size: int) -> bytes:
            nonlocal pending
            while not pending:
                pending = next(chunks, None)
                if pending is None:
                    pending = b""
                    return b""
            data, pending = pending[:size], pending[size:]
            return data

        return cls(read)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._read(len(buffer))
        except self._errors as exc:
            raise self._translate(exc, self.bytes_read) from None
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
        super().close()


class _Primed(NamedTuple):
    """The first item read at open, the rest of the items, or the FeedError met at the first."""

    first: list[FeedItem]
    rest: Iterator[FeedItem]
    error: FeedError | None


class Feed:
    """An open feed: iterate it for FeedItems; bytes_read and totals feed the progress bar.
    raw is a ByteStream or a binary file (counted through one)."""

    def __init__(
        self,
        name: str,
        raw,
        reader: Reader,
        total_items: int | None = None,
        bytes_total: int | None = None,
    ) -> None:
        self.name = name
        self._counter = raw if isinstance(raw, ByteStream) else ByteStream.of_file(raw)
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
        # A remote file read in full is archived by calling this (it returns a note).
        self.archive: Callable[[], str] | None = None
        # What reading it noted for the run (the mapping used, columns not read, ...).
        self.notes: list[str] = []
        self._primed: _Primed | None = None

    def prime(self) -> None:
        """Read the first item now, so a feed unusable from its start (a CSV header without
        the required columns) raises SourceError at open; a FeedError waits for iteration."""
        items = self._reader(self.stream)
        try:
            first = [next(items)]
        except StopIteration:
            first = []
        except FeedError as exc:
            self._primed = _Primed([], iter(()), exc)
            return
        self._primed = _Primed(first, items, None)

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes_read

    def __iter__(self) -> Iterator[FeedItem]:
        if self.not_modified:
            return iter(())
        if self._primed is not None:
            primed, self._primed = self._primed, None
            return _replay(primed)
        return self._reader(self.stream)

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> "Feed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _replay(primed: _Primed) -> Iterator[FeedItem]:
    if primed.error is not None:
        raise primed.error
    yield from primed.first
    yield from primed.rest


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
    if head.startswith(GZIP_MAGIC) or (fmt in ("xlsx", None) and head.startswith(ZIP_MAGIC)):
        return
    for bom, encoding in FOREIGN_BOMS.items():
        if head.startswith(bom):
            if fmt in ("json", "jsonl"):
                raise SourceError(f"{feed.name}: the feed is {encoding}-encoded; expected UTF-8")
            return
    if len(head.translate(None, TEXT_BYTES)) > len(head) // 20:
        raise SourceError(f"{feed.name}: the feed is binary, not UTF-8 text")


def gunzipped(reader: Reader) -> Reader:
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
