"""CSV readers: header rows in our field names, streamed row by row with line numbers."""

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from productsync.exceptions import FeedError, SourceError
from productsync.feeds.bounds import CsvLines, item_bound
from productsync.feeds.stream import NOTED_FIELDS, NOTED_STOCK_FIELDS, not_carried_note
from productsync.outcomes import FeedItem
from productsync.records import Unparsed

DELIMITERS = ",;\t|"
CATEGORY_SEPARATOR = "|"
PRODUCT_FIELDS = (
    "upc",
    "barcode",
    "title",
    "product_class",
    "description",
    "categories",
    "is_public",
)
STOCK_FIELDS = ("partner", "partner_sku", "price", "currency", "num_in_stock")
FIELDS = PRODUCT_FIELDS + STOCK_FIELDS
REQUIRED = ("upc", "title", "product_class")
SAMPLE = 64 * 1024
HINT = f": name the columns {', '.join(FIELDS)}, or choose a mapping for another shape"


class Row(NamedTuple):
    """One non-blank CSV row: the line it starts on, and its cells (a list of strings, or a
    {column: value} dict, or Unparsed when it is ragged)."""

    line: int
    cells: list[str] | dict | Unparsed


def encoding_sniff(sample: bytes) -> str:
    """UTF-16 by its BOM, UTF-8 when the sample decodes as such, else Windows-1252."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def delimiter_sniff(first_line: str) -> str:
    """The candidate that splits the first line most often outside quotes (comma on a tie)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _text(stream: io.BufferedReader, encoding: str | None) -> tuple[io.TextIOWrapper, str]:
    """The stream as text, and the first line to sniff the delimiter from."""
    sample = stream.peek(SAMPLE)
    encoding = encoding or encoding_sniff(sample)
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    first_line = sample.decode(encoding, errors="replace").splitlines()[:1]
    return io.TextIOWrapper(stream, encoding=encoding, newline=""), "".join(first_line)


def csv_rows(
    stream: io.BufferedReader,
    delimiter: str | None = None,
    encoding: str | None = None,
    backslash_escapes: bool = False,
) -> Iterator[Row]:
    """Each non-blank row, cells as a list, or an Unparsed for a row longer than
    PRODUCTSYNC['MAX_ITEM_BYTES'] characters. With backslash_escapes, \\" \\\\ and a
    backslash before the delimiter are escapes, as in Oscar's files; any other backslash is
    kept as text."""
    text, first_line = _text(stream, encoding)
    delimiter = delimiter or delimiter_sniff(first_line)
    bound = item_bound()
    bounded = CsvLines(text, bound, delimiter)
    # The module's limit (131072 by default) is for the whole process; rows are bounded above.
    csv.field_size_limit(max(csv.field_size_limit(), 2 * bound))
    lines: Iterable[str] = bounded
    options = {"delimiter": delimiter}
    if backslash_escapes:
        # A backslash and what it escapes are consumed as a pair, so `\\n` stays `\` + `n`.
        pair = re.compile(r"\\([\\\"\r\n" + re.escape(delimiter) + "])?")

        def keep_lone(match: re.Match) -> str:
            return match.group(0) if match.group(1) else "\\\\"

        lines = (pair.sub(keep_lone, line) for line in bounded)
        options["escapechar"] = "\\"
    reader = csv.reader(lines, **options)
    line = 1
    try:
        for row in reader:
            if bounded.over:
                yield Row(line, bounded.row_failure(line))
            elif row:
                yield Row(line, row)
            line = reader.line_num + 1
            bounded.row_start()
    except csv.Error as exc:
        raise FeedError(f"line {line}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise FeedError(f"line {line}: not {text.encoding} text ({exc.reason})") from None


def row_text(row: list[str]) -> str:
    """A row written back as one CSV line, kept as the raw payload of a failed row. (The
    writer quotes cells holding a line break only when its line terminator has them.)"""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(row)
    return out.getvalue().removesuffix("\r\n")


def csv_dicts(
    stream: io.BufferedReader,
    delimiter: str | None = None,
    encoding: str | None = None,
    required: Iterable[str] = (),
    hint: str = "",
) -> Iterator[Row]:
    """Rows of a CSV with a header row, as {column: value}; a ragged row is Unparsed. A header
    without a required column (compared in any letter case) is a SourceError."""
    return row_dicts(csv_rows(stream, delimiter, encoding), required, hint)


def row_dicts(rows: Iterator[Row], required: Iterable[str] = (), hint: str = "") -> Iterator[Row]:
    """Rows after a header row (a CSV's, a sheet's) as {column: value}, as csv_dicts says."""
    try:
        _, header = next(rows)
    except StopIteration:
        raise SourceError("the CSV is empty: expected a header row") from None
    header = [name.strip() for name in header]
    lowered = {name.lower() for name in header}
    missing = [name for name in required if name.lower() not in lowered]
    if missing:
        raise SourceError(
            f"the CSV header has no {', '.join(missing)} column (it has "
            f"{', '.join(header[:12])}{', ...' if len(header) > 12 else ''}){hint}"
        )
    for line, row in rows:
        if isinstance(row, Unparsed):
            yield Row(line, row)
        elif len(row) != len(header):
            message = f"line {line}: expected {len(header)} fields, got {len(row)}"
            yield Row(line, Unparsed(row_text(row), message))
        else:
            yield Row(line, dict(zip(header, row, strict=True)))


# A breadcrumb of a categories cell: up to a "|" that no backslash escapes (its escapes are
# left for the breadcrumb's reader, records.breadcrumb_names).
_CELL_BREADCRUMB = re.compile(r"(?:\\[\\>|]|[^\\|]|\\)+")


def flat_payload(flat: dict) -> dict:
    """A feed item from flat fields (a CSV row in our names): `|` separates breadcrumbs and
    the partner columns make one stock record; empty cells are absent values."""
    payload = {}
    for key, value in flat.items():
        if key in STOCK_FIELDS or (key == "is_public" and value in ("", None)):
            continue
        if key == "categories" and isinstance(value, str):
            value = [part.strip() for part in _CELL_BREADCRUMB.findall(value) if part.strip()]
        payload[key] = value
    stock = {key: (None if flat.get(key) == "" else flat.get(key)) for key in STOCK_FIELDS}
    if stock["partner"] or stock["partner_sku"]:
        payload["stockrecords"] = [
            {key: value for key, value in stock.items() if key in flat or value is not None}
        ]
    return payload


def items_merged(rows: Iterable[dict | Unparsed]) -> Iterator[FeedItem]:
    """One FeedItem per product: rows of the same upc in a row add their categories and
    stock records, and their non-empty product fields win."""
    position = 0
    pending = None
    for payload in rows:
        if (
            pending is not None
            and isinstance(payload, dict)
            and payload.get("upc")
            and payload.get("upc") == pending.payload.get("upc")
        ):
            pending.add(payload)
            continue
        if pending is not None:
            yield FeedItem(position, pending.merged())
            position += 1
            pending = None
        if isinstance(payload, dict):
            pending = _Merging(payload)
        else:
            yield FeedItem(position, payload)
            position += 1
    if pending is not None:
        yield FeedItem(position, pending.merged())


class _Merging:
    """A product's first row with the later rows of its upc added: categories and stock
    records gather in dicts, made lists once at the end, so each row costs its own size
    (rebuilding the lists per row made N rows of one upc cost N squared)."""

    def __init__(self, payload: dict) -> None:
        self.payload = payload
        self.categories: dict | None = None
        self.records: dict | None = None

    def add(self, row: dict) -> None:
        into = self.payload
        for key, value in row.items():
            if key == "categories":
                if self.categories is None:
                    self.categories = dict.fromkeys(into.setdefault(key, []))
                self.categories.update(dict.fromkeys(value))
            elif key == "stockrecords":
                # A later row for the same partner SKU replaces the earlier one, as in Oscar.
                if self.records is None:
                    self.records = _by_sku(into.setdefault(key, []))
                self.records.update(_by_sku(value))
            elif value not in ("", None):
                into[key] = value

    def merged(self) -> dict:
        if self.categories is not None:
            self.payload["categories"] = list(self.categories)
        if self.records is not None:
            self.payload["stockrecords"] = list(self.records.values())
        return self.payload


def _by_sku(records: list[dict]) -> dict:
    return {(r.get("partner"), r.get("partner_sku")): r for r in records}


def csv_items(
    stream: io.BufferedReader,
    delimiter: str | None = None,
    encoding: str | None = None,
    notes: list | None = None,
) -> Iterator[FeedItem]:
    """Items of a CSV whose header row names our fields (in any letter case)."""
    yield from table_items(csv_rows(stream, delimiter, encoding), notes)


def table_items(rows: Iterator[Row], notes: list | None = None) -> Iterator[FeedItem]:
    """Items of rows (a CSV's, a sheet's) whose header row names our fields; notes get the
    fields the header has no column for (left as they are)."""

    def payloads():
        noted = notes is None
        for _, row in row_dicts(rows, REQUIRED, HINT):
            if isinstance(row, Unparsed):
                yield row
                continue
            flat = {_ours(key): value for key, value in row.items()}
            if not noted:
                absent_note(flat, notes)
                noted = True
            yield flat_payload(flat)

    yield from items_merged(payloads())


def absent_note(flat: dict, notes: list) -> None:
    """Note the fields of data a row's header has no column for (prices and stock levels
    when it has stock records): the feed does not carry them."""
    wanted = NOTED_FIELDS
    if "partner" in flat or "partner_sku" in flat:
        wanted += NOTED_STOCK_FIELDS
    absent = [name for name in wanted if name not in flat]
    if absent:
        notes.append(not_carried_note(absent))


def _ours(column: str) -> str:
    return column.lower() if column.lower() in FIELDS else column
