"""Opening a source and choosing its reader: the one module that imports the readers."""

import codecs
import csv
import dataclasses
import functools
import io
import itertools
import os
import stat
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from productsync.exceptions import FeedError, SourceError
from productsync.feeds import csvfeed, jsonfeed, mapping, oscarcsv, stockcsv, xlsxfeed, xmlfeed
from productsync.feeds.presets import preset_detect, preset_path
from productsync.feeds.sources import (
    credentials_errors,
    credentials_get,
    is_remote,
    remote_archive,
    remote_fetch,
    remote_fingerprint,
    url_password_refuse,
    url_public,
)
from productsync.feeds.stream import (
    ByteStream,
    Feed,
    FeedOptions,
    Reader,
    Validators,
    feed_sniff,
    gunzipped,
    is_url,
)
from productsync.outcomes import FeedItem

__all__ = [
    "FORMATS",
    "ByteStream",
    "Feed",
    "FeedOptions",
    "credentials_errors",
    "credentials_get",
    "feed_open",
    "is_remote",
    "is_url",
    "mapping_path",
    "remote_fingerprint",
    "url_password_refuse",
    "url_public",
]

FORMATS = ("json", "jsonl", "csv", "oscar-csv", "xml", "xlsx")
EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xml": "xml",
    ".rss": "xml",
    ".atom": "xml",
    ".xlsx": "xlsx",
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
    "application/xml": "xml",
    "text/xml": "xml",
    "application/rss+xml": "xml",
    "application/atom+xml": "xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


def format_guess(name: str, content_type: str = "") -> str | None:
    """The feed format from a Content-Type, else from the name's extension (.gz ignored)."""
    media = content_type.split(";")[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    path = urlsplit(name).path if "://" in name else name
    path = path.lower().removesuffix(".gz")
    return EXTENSIONS.get(os.path.splitext(path)[1])


def reader_for(
    name: str,
    options: FeedOptions,
    content_type: str = "",
    notes: list | None = None,
    parse: bool = True,
    source_notes: tuple[str, ...] = (),
) -> tuple[str | None, Reader]:
    """The format of a source and the reader of its (maybe gzipped) bytes; what a read notes
    for the run (the mapping a CSV header chose, columns not read) goes to notes, afresh on
    each read (a file is read twice: counted, then synced). Without parse, our JSON's and a
    partial CSV's items have no payload (to count them); no mapping may be given. source_notes
    (the file a pattern chose) come first in notes."""
    notes = [] if notes is None else notes
    fmt = options.format or format_guess(name, content_type)
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"{name}: unknown feed format {fmt!r} (known: {', '.join(FORMATS)})")
    _csv_options_check(options)
    field_map = mapping.mapping_for(options.mapping, options.preset)
    if field_map is not None:
        field_map.notes = notes
        if options.preset and options.partner:
            field_map.partner = options.partner
        field_map.temp_dir, field_map.beat = options.temp_dir, options.beat
    if fmt is None and field_map is not None:
        fmt = field_map.format
    csv_options = {"delimiter": options.delimiter, "encoding": options.encoding}
    readers = {
        "json": functools.partial(jsonfeed.json_items, parse=parse),
        "jsonl": functools.partial(jsonfeed.jsonl_items, parse=parse),
        "csv": functools.partial(csvfeed.csv_items, **csv_options, notes=notes),
        "oscar-csv": functools.partial(oscarcsv.oscar_items, **csv_options),
        "xml": functools.partial(_xml_sniffed, notes=notes),
        "xlsx": functools.partial(_xlsx_sniffed, sheet=options.sheet, notes=notes),
        "xlsx-rows": xlsxfeed.xlsx_rows,
        None: functools.partial(
            _sniffed, csv_options=csv_options, notes=notes, sheet=options.sheet
        ),
    }
    if options.partial:
        readers["csv"] = functools.partial(
            stockcsv.partial_csv_items, **csv_options, partner=options.partner, parse=parse
        )
        readers["xlsx"] = lambda stream: stockcsv.partial_items(
            csvfeed.row_dicts(xlsxfeed.xlsx_rows(stream, options.sheet)), options.partner, parse
        )
    reader = readers[fmt]
    if field_map is not None:
        reader = field_map.reader(fmt, readers, csv_options, options.sheet)
    elif fmt in ("json", "jsonl") and not options.partial:
        reader = _json_noted(reader, notes)
    elif fmt == "csv" and options.format is None and not options.partial:
        # A .csv without our header is Oscar's headerless file, as oscar_import_catalogue reads.
        reader = functools.partial(_csv_sniffed, csv_options=csv_options, notes=notes)
    return fmt, _noted(gunzipped(reader), notes, source_notes)


def _csv_options_check(options: FeedOptions) -> None:
    if options.delimiter is not None and len(options.delimiter) != 1:
        raise SourceError(f"the CSV delimiter must be one character, not {options.delimiter!r}")
    if options.encoding is not None:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            raise SourceError(f"unknown encoding {options.encoding!r}") from None


def _noted(reader: Reader, notes: list, first_notes: tuple[str, ...]) -> Reader:
    def read(stream: io.BufferedReader) -> Iterator[FeedItem]:
        notes[:] = first_notes
        yield from reader(stream)

    return read


def _json_noted(reader: Reader, notes: list) -> Reader:
    """A JSON reader whose items' absent fields are named in notes (jsonfeed.absent_noted)."""
    return lambda stream: jsonfeed.absent_noted(reader(stream), notes)


def feed_partial(options: FeedOptions) -> bool:
    """Whether the feed options make a run partial: a stock file's partner, or a mapping
    that declares partial = true (an unreadable mapping is reported when the feed opens).
    With a preset, the partner names the stock records' partner (a run of a whole feed)."""
    if options.partner and not options.preset:
        return True
    try:
        return bool(options.mapping) and mapping.mapping_load(options.mapping).partial
    except SourceError:
        return False


def feed_owns(options: FeedOptions) -> tuple[str, ...] | None:
    """The fields the feed's mapping says it owns (None: it does not say, or it cannot be
    read, which is reported when the feed opens)."""
    try:
        return mapping.mapping_load(options.mapping).owns if options.mapping else None
    except SourceError:
        return None


def _sniffed(
    stream: io.BufferedReader, csv_options: dict, notes: list, sheet: str | None = None
) -> Iterator[FeedItem]:
    """Neither name nor Content-Type tells: a JSON array, JSON Lines, XML, a workbook, else
    CSV."""
    head = stream.peek(64).lstrip()[:1]
    if head == b"[":
        return jsonfeed.absent_noted(jsonfeed.json_items(stream), notes)
    if head == b"{":
        return jsonfeed.absent_noted(jsonfeed.jsonl_items(stream), notes)
    if head == b"<":
        return _xml_sniffed(stream, notes)
    if stream.peek(4)[:4] == xlsxfeed.ZIP_MAGIC:
        return _xlsx_sniffed(stream, sheet, notes)
    return _csv_sniffed(stream, csv_options, notes)


def _xml_sniffed(stream: io.BufferedReader, notes: list) -> Iterator[FeedItem]:
    """An XML feed without a mapping: a Google Merchant Center feed, told by its namespace."""
    if xmlfeed.namespace_declared(stream.peek(csvfeed.SAMPLE), xmlfeed.GOOGLE_NAMESPACE):
        field_map = mapping.mapping_for(None, "google")
        field_map.notes = notes
        notes.append("mapping: the google preset, detected from the feed's namespace")
        return field_map.reader("xml", {}, {})(stream)
    raise SourceError(
        "an XML feed needs a mapping saying which element is an item (item_path) and "
        "what each field reads, or the google preset for a Google Merchant Center feed"
    )


def _xlsx_sniffed(stream: io.BufferedReader, sheet: str | None, notes: list):
    """A workbook's sheet read as its CSV would be: a `upc` column, or a preset's header."""
    rows = xlsxfeed.xlsx_rows(stream, sheet)
    first = next(rows, None)
    if first is None:
        raise SourceError("the sheet is empty: expected a header row")
    rows = itertools.chain([first], rows)
    header = first.cells if isinstance(first.cells, list) else []
    if "upc" in (cell.strip().lower() for cell in header):
        return csvfeed.table_items(rows, notes)
    detected = preset_detect(header)
    if detected is not None:
        return _preset_mapping(detected, notes, "sheet's header").table_items(rows, unit="row")
    raise SourceError(
        f"the sheet has no upc column in its first row (it has {', '.join(header[:12])}): "
        "choose a platform preset or a mapping for this shape"
    )


def _preset_mapping(detected, notes: list, where: str):
    """The mapping of a platform's export told from its header; the notes say so, and name
    a detect column it lacks."""
    field_map = mapping.mapping_for(None, detected.name)
    field_map.notes = notes
    notes.append(f"mapping: the {detected.name} preset, detected from the {where}")
    if detected.missing:
        notes.append(f"a {detected.name} export without the column {', '.join(detected.missing)}")
    return field_map


def _csv_sniffed(stream: io.BufferedReader, csv_options: dict, notes: list) -> Iterator[FeedItem]:
    """A CSV whose first row names a `upc` column; a platform's export, told by its header
    (read with that preset's mapping); else Oscar's headerless 5/9-column file."""
    delimiter, encoding = csv_options["delimiter"], csv_options["encoding"]
    sample = stream.peek(csvfeed.SAMPLE)
    text = sample.decode(encoding or csvfeed.encoding_sniff(sample), errors="replace")
    first_line = text.lstrip("\ufeff").splitlines()[:1] or [""]
    delimiter_guess = delimiter or csvfeed.delimiter_sniff(first_line[0])
    first = next(csv.reader(first_line, delimiter=delimiter_guess), [])
    if "upc" in (cell.strip().lower() for cell in first):
        return csvfeed.csv_items(stream, delimiter, encoding, notes)
    detected = preset_detect(first)
    if detected is not None:
        return _preset_mapping(detected, notes, "CSV header").reader("csv", {}, csv_options)(stream)
    if len(first) in oscarcsv.OSCAR_WIDTHS:
        return oscarcsv.oscar_items(stream, delimiter, encoding)
    raise SourceError(
        f"the CSV has no upc column in its first row and {len(first)} fields, not Oscar's "
        "5 or 9: choose its format, a platform preset or a mapping for this shape"
    )


def mapping_path(options: FeedOptions) -> str | None:
    """The mapping file a source is read with: the one given, or the preset's."""
    found = preset_path(options.preset) if options.preset else None
    return options.mapping or (str(found) if found else None)


def feed_open(
    source: str,
    fmt: str | None = None,
    count: bool = True,
    *,
    options: FeedOptions | None = None,
    validators: tuple[str, str] = Validators(),
) -> Feed:
    """Open a local feed file, an http(s) URL or a remote (sftp, ftp, ftps, s3) file. For a
    file, with count, pre-count its items so progress shows a total. For a URL, validators are
    the (ETag, Last-Modified) of the last successful run: an unchanged feed opens as
    not_modified without a body. A remote file is fetched into a temporary file first."""
    options = options or FeedOptions()
    if fmt is not None:
        options = dataclasses.replace(options, format=fmt)
    notes: list[str] = []
    if is_url(source):
        # requests is imported only when a source is a URL.
        from productsync.feeds.http import http_open

        feed = http_open(
            source,
            Validators(*validators),
            lambda content_type: reader_for(source, options, content_type, notes)[1],
        )
        feed.notes = notes
        return feed
    if is_remote(source):
        return _remote_open(source, options, count)
    return _path_open(source, source, options, count)


def _remote_open(source: str, options: FeedOptions, count: bool) -> Feed:
    """Fetch a remote file into a temporary file and open that, read by the reader its own
    name calls for; the temporary file's name is gone once it is open (its bytes stay until
    the feed closes). A file read in full is archived by feed.archive()."""
    fetched = remote_fetch(source, options.credentials, options.username)
    try:
        feed = _path_open(fetched.path, fetched.url, options, count, tuple(fetched.notes))
    finally:
        os.unlink(fetched.path)
    if options.archive_to:
        feed.archive = functools.partial(
            remote_archive,
            source,
            options.credentials,
            options.username,
            fetched.remote.path,
            options.archive_to,
        )
    return feed


def _path_open(
    path: str, name: str, options: FeedOptions, count: bool, source_notes: tuple[str, ...] = ()
) -> Feed:
    """Open the local file at path, called name (which tells its format)."""
    notes: list[str] = []
    fmt, reader = reader_for(name, options, notes=notes, source_notes=source_notes)
    if os.path.isdir(path):
        raise SourceError(f"{name}: is a directory, not a feed file")
    try:
        raw = open(path, "rb")  # noqa: SIM115  (closed by Feed.close)
    except OSError as exc:
        raise SourceError(f"{name}: cannot open: {exc.strerror or exc}") from None
    info = os.fstat(raw.fileno())
    regular = stat.S_ISREG(info.st_mode)
    try:
        feed = Feed(name, raw, reader, bytes_total=info.st_size if regular else None)
        feed.notes = notes
        feed_sniff(feed, fmt)
    except (FeedError, SourceError) as exc:
        raw.close()
        raise SourceError(str(exc) if isinstance(exc, SourceError) else f"{name}: {exc}") from None
    try:
        if count and regular:
            # Only regular files are counted: a pipe or a device can be read once. Our JSON
            # array, JSON Lines and a partial CSV are counted without making payloads.
            counter = reader
            if not (options.mapping or options.preset):
                counter = reader_for(name, options, parse=False)[1]
            with Feed(name, open(path, "rb"), counter) as counting:
                feed.total_items = _count(counting, options.beat)
        else:
            feed.prime()
    except SourceError:
        feed.close()
        raise
    return feed


# Items counted between two calls of a feed's beat.
COUNT_BEAT_EVERY = 1000


def _count(feed: Feed, beat: Callable[[], None] | None = None) -> int | None:
    """Items in a feed, or None when it is malformed (the real pass reports where)."""
    total = 0
    try:
        for _ in feed:
            total += 1
            if beat and total % COUNT_BEAT_EVERY == 0:
                beat()
    except FeedError:
        return None
    return total
