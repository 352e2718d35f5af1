"""Rows read in a mapping's shape: a CSV's or a sheet's rows after their header, an XML
document's items; grouped into products ([group]) with their variants ([variants])."""

import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from productsync.exceptions import FeedError, RecordError
from productsync.feeds.csvfeed import items_merged, row_dicts
from productsync.feeds.mapping.diagnostics import source_check, source_text
from productsync.feeds.mapping.grouping import (
    Row,
    groups_by_reference,
    groups_consecutive,
    groups_sharing,
)
from productsync.feeds.mapping.rules import Rule
from productsync.feeds.mapping.shapes import group_payload
from productsync.feeds.stream import not_carried_note
from productsync.feeds.xmlfeed import Document, xml_rows, xml_value
from productsync.outcomes import FeedItem
from productsync.records import Unparsed


@dataclass(frozen=True)
class Grouping:
    """Rows that make one product: consecutive rows with the same key, or rows naming their
    parent's key (parent) or their children's keys (children), in any order."""

    key: Rule
    parent: Rule | None = None
    children: Rule | None = None
    # Rows sharing the key anywhere in the file (Google's item_group_id), not just in a run.
    any_order: bool = False


class RowMapping:
    """What a Mapping does with rows and with every item it reads (its fields are Mapping's)."""

    # The columns it reads that the header of the table being read does not have.
    absent: frozenset = frozenset()

    def value_clean(self, value: Any) -> Any:
        """A value read from an item, a placeholder ("NULL", NaN) read as empty."""
        if value is None or (isinstance(value, str) and value.strip() in self.placeholders):
            return ""
        if isinstance(value, float) and value != value:  # NaN
            return ""
        return value

    def csv_getter(self, row: dict, parent: dict | None):
        def get(path: str) -> Any:
            if parent is not None and path.startswith("parent.") and path not in row:
                return self.value_clean(parent.get(path[len("parent.") :]))
            if path not in row and self._prefixed(path):
                path = path.partition(":")[2]  # Google's tab-separated form: `price`
            return self.value_clean(row.get(path))

        return get

    def _prefixed(self, path: str) -> bool:
        """Whether a path starts with a namespace prefix the mapping declares (`g:price`)."""
        prefix, colon, _ = path.partition(":")
        return bool(colon) and prefix in self.namespaces

    def xml_getter(self, document: Document):
        """getter(row, parent) of XML items: `a/b` element paths, `@name` attributes, a
        repeated element as a list, `/absolute/paths` outside the items (a channel's title)
        and `parent.` paths reading a variant's product."""

        def getter(row: dict, parent: dict | None):
            def get(path: str) -> Any:
                if path.startswith("/"):
                    return self.value_clean(document.values.get(path))
                if parent is not None and path.startswith("parent."):
                    return self.value_clean(xml_value(parent, path[len("parent.") :]))
                return self.value_clean(xml_value(row, path))

            return get

        return getter

    def skip_counted(self, get, counts: Counter) -> bool:
        """Whether the mapping's filter skips the item (counted by reason for the notes)."""
        if self.skip is not None and self.skip.holds(get):
            counts[str(self.skip)] += 1
            return True
        return False

    def skips_noted(self, counts: Counter) -> None:
        for why, count in counts.items():
            self.notes.append(f"{count} items skipped by the mapping's filter ({why})")

    def table_items(self, rows, unit: str = "line") -> Iterator[FeedItem]:
        """Items of rows whose first is a header (a CSV's, a sheet's)."""
        hint = f": {self.name} reads it"
        keys = [self.shape.fields.rules.get("upc"), self.group and self.group.key]
        required = list(dict.fromkeys(p for rule in keys if rule for p in rule.paths()[:1]))
        if self.format == "xml":
            required = []  # Google's tab-separated form: optional columns key its products
        dicts = row_dicts(rows, required, hint)
        rows = self._header_noted(Row(line, row) for line, row in dicts)
        yield from self._rows_items(rows, self.csv_getter, unit)

    def xml_items(self, stream: io.BufferedReader) -> Iterator[FeedItem]:
        """Items of an XML document: its item elements, read as rows."""
        document = Document()
        unread: Counter = Counter()
        rows = xml_rows(stream, self.item_paths, self.namespaces, document)
        count = 0
        elements = self._elements_noted(rows, unread)
        for item in self._rows_items(elements, self.xml_getter(document), "line", self._xml_absent):
            count += 1
            yield item
        if count == 0:
            raise FeedError(
                f"no items at {' or '.join(self.item_paths.paths)}: check item_path in the "
                f"{self.name}"
            )
        if unread:
            names = ", ".join(sorted(unread)[:50]) + (", ..." if len(unread) > 50 else "")
            self.notes.append(f"elements not imported: {names}")

    def _elements_noted(self, rows: Iterator[Row], unread: Counter) -> Iterator[Row]:
        """The rows; counts the item elements the mapping does not read (for the notes)."""
        read = {c.removeprefix("parent.").split("/")[0] for c in self.columns()}
        for row in rows:
            if isinstance(row.data, dict) and len(unread) <= 50:
                unread.update(key for key in row.data if key not in read and key != "#text")
            yield row

    def _xml_absent(self, row: Any) -> frozenset:
        """The element paths an XML item lacks: the fields that read only those are not
        carried (left as they are). `parent.` and absolute paths count as present."""
        if not isinstance(row, dict):
            return frozenset()
        paths = {p for shape in self._shapes() for p in shape.paths() if p[:1] != "/"}
        return frozenset(
            p for p in paths if not p.startswith("parent.") and xml_value(row, p) is None
        )

    def _rows_items(
        self, rows: Iterator[Row], getter, unit: str = "line", absent_of=None
    ) -> Iterator[FeedItem]:
        """Items of rows; absent_of(a group's first row) names the paths an item lacks, when
        each item has its own (XML), else the header's (self.absent) hold for all."""
        groups = self._groups(rows, getter)
        position, skipped = 0, Counter()
        for group in groups:
            if isinstance(group[0].data, Unparsed):
                yield FeedItem(position, group[0].data)
                position += 1
                continue
            if self.skip_counted(getter(group[0].data, None), skipped):
                continue
            try:
                absent = absent_of(group[0].data) if absent_of else self.absent
                item = self._group_item(group, getter, unit, absent)
            except RecordError as exc:  # a pattern that gave up: this item fails, not the feed
                rows = [(row.line, row.data) for row in group]
                item = Unparsed(source_text(rows, unit), f"{unit} {group[0].line}: {exc}")
            yield FeedItem(position, item)
            position += 1
        self.skips_noted(skipped)

    def _header_noted(self, rows: Iterator[Row]) -> Iterator[Row]:
        """The rows; the run's notes name the columns of the header the mapping does not read
        (never dropped silently) and the columns it reads that the header lacks (read as
        empty: a preset reads several versions of a platform's export)."""
        for row in rows:
            if isinstance(row.data, dict):
                header, wanted = list(row.data), self.columns()
                read = {c.removeprefix("parent.") for c in wanted}
                read |= {c.partition(":")[2] for c in read if self._prefixed(c)}
                unread = [c for c in header if c not in read]
                absent = [
                    c
                    for c in read
                    if c not in row.data
                    and not (self._prefixed(c) and c.partition(":")[2] in row.data)
                ]  # a variant's `parent.` paths read the same header
                self.absent = frozenset(absent + [f"parent.{c}" for c in absent])
                if unread:
                    self.notes.append(f"columns not imported: {', '.join(unread)}")
                self._absent_noted()
                self._pairs_noted()
                yield row
                yield from rows
                return
            yield row

    def _pairs_noted(self) -> None:
        """The run's notes name the codes=value pairs the mapping leaves out, once."""
        shapes = [self.shape] + ([self.variants.shape] if self.variants else [])
        skipped: dict[str, set[str]] = {}
        for shape in shapes:
            for path, codes in shape.pairs_skipped().items():
                skipped.setdefault(path, set()).update(codes)
        for path, codes in skipped.items():
            self.notes.append(f"{path} not imported: {', '.join(sorted(codes))}")

    def _absent_noted(self) -> None:
        """Note the fields the feed does not carry because their columns are absent, once:
        left as they are. A column whose field another column gives (a preset reads
        several versions of a platform's export) goes unmentioned."""
        absent = self.absent
        fields = {k: v for s in self._shapes() for k, v in s.fields.absent(absent).items()}
        if fields:
            named = [f"{name} (column {column})" for name, column in fields.items()]
            self.notes.append(not_carried_note(named))

    def _shapes(self) -> list:
        """The shapes of the items it reads: the product's, and its variants' if any."""
        return [self.shape] + ([self.variants.shape] if self.variants else [])

    def _groups(self, rows: Iterator[Row], getter) -> Iterator[list[Row]]:
        group = self.group
        if group is None:
            upc = self.shape.fields.rules.get("upc")
            if upc is None:  # a partial feed keyed by stock record: each row is one item
                return ([row] for row in rows)
            return groups_consecutive(rows, lambda r: _grouped_by(upc, getter(r, None)))
        key = lambda r: _grouped_by(group.key, getter(r, None))  # noqa: E731
        if group.any_order:
            return groups_sharing(rows, key, self.temp_dir, self.beat)
        if group.parent is None and group.children is None:
            return groups_consecutive(rows, key)
        parent = group.parent and (lambda r: _grouped_by(group.parent, getter(r, None)))
        children = group.children and (
            lambda r: _listed(_grouped_by(group.children, getter(r, None)))
        )
        return groups_by_reference(rows, key, parent, children, self.temp_dir, self.beat)

    def _group_item(self, group: list[Row], getter, unit: str, absent: frozenset) -> Any:
        data = [row.data for row in group]
        if self.group is None:
            # Rows of the same upc one after the other add to one product, as in our CSV.
            payloads = [group_payload(self.shape, None, [row], getter, absent)[0] for row in data]
            payload = self._partnered(next(items_merged(payloads)).payload)
            if self.partial:  # checked as a partial item by the run, not as a whole product
                return payload
            columns = (self.shape.fields.columns(), {})
            return source_check(payload, [(r.line, r.data) for r in group], columns, unit)
        payload, used, columns = group_payload(self.shape, self.variants, data, getter, absent)
        rows = [(group[0].line, group[0].data)] + [(group[i].line, group[i].data) for i in used]
        return source_check(self._partnered(payload), rows, columns, unit)

    def _partnered(self, payload: dict) -> dict:
        if self.partner is not None:
            for product in (payload, *payload.get("children", ())):
                for record in product.get("stockrecords", ()):
                    record["partner"] = self.partner
        return payload


def _grouped_by(rule: Rule, get) -> Any:
    """A value that says which rows go together; a pattern that gives up on it leaves the
    grouping of the rest unknown, so the feed ends there (FeedError)."""
    try:
        return rule.get(get)
    except RecordError as exc:
        raise FeedError(str(exc)) from None


def _listed(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v not in ("", None)]
    return [str(value)] if value not in ("", None) else []
