"""Bounded reads: no feed line, JSON item or CSV row is held in memory whole past a bound.

A JSON parser given one long string spends time that grows with the square of its length,
and any parser given one long line holds all of it: these readers cut an over-long item out
of the stream before a parser sees it, keep its first bytes as the raw payload, and fail it
alone; the items around it are read as usual.
"""

import io
import re
from collections import deque
from collections.abc import Iterator

from productsync.conf import app_settings
from productsync.exceptions import FeedError
from productsync.records import Unparsed

# Bytes (or characters) of an over-long item kept as its raw payload.
PREVIEW = 1000
CHUNK = 64 * 1024
SETTING = "PRODUCTSYNC['MAX_ITEM_BYTES']"


def item_bound() -> int:
    return app_settings.MAX_ITEM_BYTES


def too_long(what: str, size: int, bound: int, unit: str = "bytes") -> str:
    return f"{what} is {size} {unit}, longer than {SETTING} ({bound})"


def _preview(data: bytes | str) -> str:
    if isinstance(data, bytes):
        data = data[:PREVIEW].decode("utf-8", errors="backslashreplace")
    return data[:PREVIEW] + "..."


def line_read(stream: io.BufferedReader, bound: int) -> tuple[bytes, int] | None:
    """The next line of stream, read at most bound + 1 bytes at a time: (line, 0), or
    (its first bytes, its whole length) when it is longer than bound (the rest is skipped);
    None at the end."""
    line = stream.readline(bound + 1)
    if not line:
        return None
    if len(line) <= bound or line.endswith(b"\n"):
        return line, 0
    size = len(line)
    head = line[:PREVIEW]
    del line
    while chunk := stream.readline(CHUNK):
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return head, size


def line_too_long(lineno: int, head: bytes, size: int, bound: int) -> Unparsed:
    return Unparsed(_preview(head), f"line {lineno}: {too_long('the line', size, bound)}")


# Outside strings, at the top level of the array (between items) and inside an item: skip
# whole strings and everything that is not a bracket (and not a comma at the top level).
_SKIP_TOP = re.compile(rb'(?:[^"\\\[\]{},]++|"(?:[^"\\]++|\\.)*+")*+', re.S)
_SKIP_IN = re.compile(rb'(?:[^"\\\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.S)
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)


_STRING = rb'"(?:[^"\\]++|\\.)*+"'


def _nested(levels: int) -> bytes:
    """A pattern for one element nested at most levels deep, up to its comma or bracket."""
    inner = rb'(?:[^"\\\[\]{}]++|' + _STRING + rb")*+"
    for _level in range(levels):
        inner = rb'(?:[^"\\\[\]{}]++|' + _STRING + rb"|[\[{]" + inner + rb"[\]}])*+"
    return rb'(?:[^"\\\[\]{},]++|' + _STRING + rb"|[\[{]" + inner + rb"[\]}])*+"


# One whole element of the array (the common case: a chunk holds many, each shorter than
# the bound), matched at once; deeper ones or one cut by the chunk's end are scanned. What
# it matches nests at most SHALLOW levels.
_ELEMENT = re.compile(_nested(5), re.S)
SHALLOW = 6


class JsonArrayBounds:
    """The elements of a JSON array (read from its opening bracket) as they come, each as
    (its bytes, whether it is known to nest at most SHALLOW levels), except that an element
    longer than bound bytes is given as an int n: too_long[n] holds its first bytes and
    length. Each element is held back until it ends, so at most bound bytes are buffered.
    After the elements, closed says whether the closing bracket was read, trailing holds
    the first bytes after it."""

    def __init__(self, raw: io.BufferedReader, bound: int) -> None:
        self.raw = raw
        self.bound = bound
        self.too_long: dict[int, tuple[bytes, int]] = {}
        self._ready: deque[tuple[bytes, bool] | int] = deque()
        self._count = 0  # elements given so far
        self._item = bytearray()
        self._over = 0  # bytes of the current element once it is over the bound
        self._head = b""
        self._depth = 0  # 0: before the array, 1: between its elements, 2+: in an element
        self._string = False
        self._escape = False
        self._done = False
        self.trailing = b""

    @property
    def closed(self) -> bool:
        return self._done

    def elements(self) -> Iterator[tuple[bytes, bool] | int]:
        while True:
            while self._ready:
                yield self._ready.popleft()
            if self.trailing:
                return
            data = self.raw.read(CHUNK)
            if not data:
                if not self._done and self._depth == 1:
                    self._flush(closing=False)  # the array cut short after an element
                    yield from self._ready
                return
            if self._done:
                self.trailing = data.lstrip()[:PREVIEW]
            else:
                self._scan(data)

    def _element(self, data: bytes, closing: bool, shallow: bool = False) -> None:
        """An element ends (closing: with the array's bracket); an array's only blank
        element is no element ([] and [ ])."""
        if not (closing and self._count == 0 and not data.strip()):
            self._ready.append((data, shallow))
            self._count += 1

    def _keep(self, data: bytes) -> None:
        if self._depth == 0 or self._done:
            return  # blanks before the bracket (the caller checked it comes first)
        if self._over:
            self._over += len(data)
        else:
            self._item += data
            if len(self._item) > self.bound:
                self._over, self._head = len(self._item), bytes(self._item[:PREVIEW])
                self._item = bytearray()

    def _flush(self, closing: bool) -> None:
        """The current element is complete: pass it on, or its index in too_long."""
        if self._over:
            index = len(self.too_long)
            self.too_long[index] = (self._head, self._over)
            self._ready.append(index)
            self._count += 1
            self._over, self._head = 0, b""
        else:
            self._element(bytes(self._item), closing)
            self._item = bytearray()

    def _scan(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._done:
                self.trailing = data[pos:].lstrip()[:PREVIEW]
                return
            if self._depth == 1 and not (self._item or self._over or self._string):
                # Fast path: whole elements inside this chunk are shorter than the bound.
                stop = _ELEMENT.match(data, pos).end()
                if stop < end and data[stop] in b",]" and stop - pos <= self.bound:
                    self._done = data[stop] == 0x5D
                    self._element(data[pos:stop], self._done, shallow=True)
                    pos = stop + 1
                    continue
            if self._escape:  # a backslash ended the previous chunk
                self._keep(data[pos : pos + 1])
                self._escape, pos = False, pos + 1
                continue
            if self._string:
                stop = _STRING_REST.match(data, pos).end()
                self._keep(data[pos:stop])
                pos = stop
                if pos == end:
                    return
                if data[pos] == 0x5C:  # a backslash: its pair may be in the next chunk
                    self._keep(data[pos : pos + 1])
                    self._escape, pos = True, pos + 1
                else:
                    self._keep(data[pos : pos + 1])
                    self._string, pos = False, pos + 1
                continue
            skip = _SKIP_TOP if self._depth <= 1 else _SKIP_IN
            stop = skip.match(data, pos).end()
            self._keep(data[pos:stop])
            pos = stop
            if pos == end:
                return
            char = data[pos : pos + 1]
            pos += 1
            if char == b'"':  # a string the chunk cut: read on in string mode
                self._string = True
                self._keep(char)
            elif char in b"[{":
                if self._depth > 0:
                    self._keep(char)
                self._depth += 1
            elif char in b"]}":
                self._depth -= 1
                if self._depth == 0:
                    self._flush(closing=True)
                    self._done = True
                else:
                    self._keep(char)
            elif char == b"," and self._depth == 1:
                self._flush(closing=False)
            else:  # a backslash outside a string: not JSON, the parser refuses it
                self._keep(char)

    def unparsed(self, index: int) -> Unparsed:
        """The failed item of the over-long element too_long[index]."""
        head, size = self.too_long.pop(index)
        return Unparsed(_preview(head), too_long("the item", size, self.bound))


class CsvLines:
    """Lines of a text stream for csv.reader, no row held past bound characters. Call
    row_start() before reading each row; once the row is longer than the bound, its lines
    are given with each run of plain characters as one `x` (the quotes, delimiters and
    escapes that decide where the row ends are kept), and over says its size."""

    def __init__(self, text: io.TextIOBase, bound: int, delimiter: str) -> None:
        self.text = text
        self.bound = bound
        self.plain = re.compile(f'[^"\\\\\r\n{re.escape(delimiter)}]+')
        self.row_chars = 0
        self.over = 0
        self.head = ""

    def row_start(self) -> None:
        self.row_chars, self.over, self.head = 0, 0, ""

    def __iter__(self) -> "CsvLines":
        return self

    def __next__(self) -> str:
        if self.over:
            return self._squeezed("")
        line = self.text.readline(self.bound - self.row_chars + 1)
        if not line:
            raise StopIteration
        self.row_chars += len(line)
        if self.row_chars <= self.bound:
            return line
        self.over, self.head = self.row_chars, (self.head or line[:PREVIEW])
        if line.endswith(("\n", "\r")):
            return self.plain.sub("x", line)
        return self._squeezed(line)

    def _squeezed(self, start: str) -> str:
        """The rest of a physical line of an over-long row, squeezed."""
        parts = [self.plain.sub("x", start)] if start else []
        kept = len(parts[0]) if parts else 0
        while True:
            piece = self.text.readline(CHUNK)
            if not piece:
                if not parts:
                    raise StopIteration
                break
            self.over += len(piece)
            part = self.plain.sub("x", piece)
            kept += len(part)
            if kept > self.bound:
                raise FeedError(
                    f"a row holds more than {self.bound} quotes and delimiters: its end "
                    "cannot be found within the bound"
                )
            parts.append(part)
            if piece.endswith(("\n", "\r")):
                break
        return "".join(parts)

    def row_failure(self, line: int) -> Unparsed:
        message = f"line {line}: {too_long('the row', self.over, self.bound, 'characters')}"
        return Unparsed(_preview(self.head), message)
