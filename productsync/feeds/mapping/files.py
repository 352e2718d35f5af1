"""Mapping files: a foreign feed's columns or JSON paths onto our fields (see rules.py for
the language of one value, shapes.py for field sets and variants), presets included."""

import io
import json
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import ijson

from productsync.exceptions import FeedError, ProductSyncError, RecordError, SourceError
from productsync.feeds.csvfeed import REQUIRED, csv_rows
from productsync.feeds.mapping.diagnostics import source_check, source_text
from productsync.feeds.mapping.rows import Grouping, RowMapping
from productsync.feeds.mapping.rules import Condition, Rule, condition_parse, rule_parse
from productsync.feeds.mapping.shapes import Shape, Variants, group_payload, shape_parse
from productsync.feeds.presets import PRESETS, preset_path
from productsync.feeds.xmlfeed import (
    ItemPaths,
    item_paths_parse,
    namespaces_parse,
)
from productsync.outcomes import FeedItem
from productsync.ownership import owns_parse
from productsync.records import Unparsed

PLACEHOLDERS = ("NULL", "NaN", "[object Object]")
# In a [children] mapping and in [variants], paths under this name read the parent item.
PARENT = "parent"
TOP_KEYS = frozenset(
    {"format", "items", "placeholders", "fields", "attributes", "class_options", "cases"}
    | {"children", "group", "variants", "filter", "detect", "name", "partial"}
    | {"item_path", "namespaces", "owns"}
)
FORMATS = ("csv", "json", "jsonl", "xml", "xlsx")
# Formats read as rows (a CSV's, a sheet's, an XML document's items): [group] and [variants]
# make products of them.
ROW_FORMATS = ("csv", "xlsx", "xml")


@dataclass
class Mapping(RowMapping):
    name: str
    shape: Shape
    format: str | None = None
    items: str = ""
    placeholders: frozenset = field(default_factory=lambda: frozenset(PLACEHOLDERS))
    # Turns the nested array at its `items` path into the item's children (variants).
    children: "Mapping | None" = None
    group: Grouping | None = None
    variants: Variants | None = None
    skip: Condition | None = None
    # Header columns that tell a preset's files apart.
    detect: tuple[str, ...] = ()
    # What the last read noted for the run: columns not read, items skipped by the filter.
    notes: list[str] = field(default_factory=list)
    # Its items carry only what they change (a stock file): runs of it are partial.
    partial: bool = False
    # The fields its feed owns: runs of it write those and nothing else (None: every field).
    owns: tuple[str, ...] | None = None
    # XML: the repeated element that makes an item, and prefixes of the namespaces paths use.
    item_paths: ItemPaths = ItemPaths(("item",))
    namespaces: dict = field(default_factory=dict)
    # The partner every stock record is written under (a preset's, by --partner), if given.
    partner: str | None = None
    # Where grouping rows by reference writes its index, and its heartbeat (see FeedOptions).
    temp_dir: str | None = None
    beat: Any = None

    @property
    def rules(self) -> dict[str, Rule]:
        """The rules of our fields (cases aside)."""
        return self.shape.fields.rules

    def columns(self) -> list[str]:
        """The source columns or paths the mapping reads."""
        out = self.shape.paths()
        if self.variants is not None:
            out += self.variants.shape.paths()
        for rule in (self.group.key, self.group.parent, self.group.children) if self.group else ():
            out += rule.paths() if rule else []
        return list(dict.fromkeys(out))

    def _walk(self, value: Any, parts: list[str]) -> Any:
        """The value at a path: a part is a key, a list index, `*` (the rest of the path for
        every element of a list) or `key=value` (the first element of a list with that)."""
        for i, part in enumerate(parts):
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list) and part == "*":
                return [self._walk(element, parts[i + 1 :]) for element in value]
            elif isinstance(value, list):
                value = _element(value, part)
            else:
                return None
        return self.value_clean(value)

    def json_getter(self, item: dict):
        return lambda path: self._walk(item, path.split("."))

    def apply(self, item: Any) -> Any:
        """Our shape of one JSON object (with its [children])."""
        if not isinstance(item, dict):
            return item
        absent = frozenset(p for p in self.shape.paths() if _missing(item, p.split(".")))
        payload = group_payload(self.shape, None, [item], self._json, absent)[0]
        if self.children is not None:
            nested = self.json_getter(item)(self.children.items)
            payload["children"] = [
                self.children.apply({**child, PARENT: item}) if isinstance(child, dict) else child
                for child in (nested if isinstance(nested, list) else [])
            ]
        return payload

    def _json(self, item: dict, parent: Any) -> Any:
        return self.json_getter(item)

    def reader(self, fmt: str | None, readers: dict, csv_options: dict, sheet: str | None = None):
        """The reader of a source in this mapping's shape, giving items in our shape."""
        if fmt in ROW_FORMATS and self.children is not None:
            raise SourceError(
                f"{self.name}: [children] reads nested JSON; the variants of a "
                f"{fmt.upper()} are rows: use [group] and [variants]"
            )
        if fmt not in ROW_FORMATS and (self.group or self.variants):
            raise SourceError(
                f"{self.name}: [group] and [variants] read CSV or sheet rows, or XML items"
            )
        if fmt == "csv":
            return lambda stream: self.table_items(csv_rows(stream, **csv_options))
        if fmt == "xlsx":
            rows = readers["xlsx-rows"]
            return lambda stream: self.table_items(rows(stream, sheet=sheet), unit="row")
        if fmt == "xml":
            return self.xml_items
        if fmt == "json":
            return self._json_items
        if fmt == "jsonl":
            jsonl_items = readers["jsonl"]
            return lambda stream: self._mapped(jsonl_items(stream))
        if fmt is None:
            raise SourceError(
                f"{self.name}: the source's format is unknown: set format in the "
                "mapping or choose the feed's format"
            )
        raise SourceError(f"{self.name}: a mapping reads {', '.join(FORMATS)}, not {fmt}")

    def _checked(self, position: int, index: int, item: Any) -> FeedItem:
        """The item in our shape, or an Unparsed naming the source item (index) and path."""
        if not isinstance(item, dict):
            return FeedItem(position, item)
        if self.partial:  # checked as a partial item by the run, not as a whole product
            return FeedItem(position, self.apply(item))
        columns = (
            self.shape.fields.columns(),
            self.children.shape.fields.columns() if self.children else {},
        )
        try:
            payload = self.apply(item)
        except RecordError as exc:  # a pattern that gave up: this item fails, the feed goes on
            return FeedItem(position, Unparsed(source_text([(index, item)], "item"), str(exc)))
        return FeedItem(position, source_check(payload, [(index, item)], columns, "item"))

    def _mapped(self, items: Iterator[FeedItem]) -> Iterator[FeedItem]:
        position, skipped = 0, Counter()
        for index, item in enumerate(items):
            if isinstance(item.payload, dict) and self.skip_counted(
                self.json_getter(item.payload), skipped
            ):
                continue
            yield self._checked(position, index, item.payload)
            position += 1
        self.skips_noted(skipped)

    def _json_items(self, stream: io.BufferedReader) -> Iterator[FeedItem]:
        prefix = f"{self.items}.item" if self.items else "item"
        read = position = 0
        skipped = Counter()
        try:
            for payload in ijson.items(stream, prefix, use_float=True):
                read += 1
                get = self.json_getter(payload) if isinstance(payload, dict) else None
                if get is not None and self.skip_counted(get, skipped):
                    continue
                yield self._checked(position, read - 1, payload)
                position += 1
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise FeedError(f"malformed JSON after item {position}: {exc}") from None
        if read == 0:
            raise FeedError(f"no items at {prefix!r}: check `items` in {self.name}")
        self.skips_noted(skipped)


def _missing(value: Any, parts: list[str]) -> bool:
    """Whether an object on the path lacks its key: the item does not carry what the path
    reads (a list element not found, a null, is a value: it clears)."""
    for part in parts:
        if not isinstance(value, dict):
            return False
        if part not in value:
            return True
        value = value[part]
    return False


def _element(items: list, part: str) -> Any:
    if part.isdigit():
        return items[int(part)] if int(part) < len(items) else None
    key, equals, wanted = part.partition("=")
    if equals:
        for element in items:
            if isinstance(element, dict) and str(element.get(key)) == wanted:
                return element
    return None


def mapping_for(path: str | None, preset: str | None) -> Mapping | None:
    """The mapping of a file, or of a preset by name; None for neither."""
    if path and preset:
        raise SourceError("give a mapping or a preset, not both")
    if preset:
        found = preset_path(preset)
        if found is None:
            raise SourceError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        return mapping_load(str(found), name=f"the {preset} preset")
    return mapping_load(path) if path else None


def mapping_load(path: str, name: str | None = None) -> Mapping:
    """Read and check a mapping file (TOML or JSON); every problem is a SourceError."""
    name = name or f"mapping {path}"  # as messages name it, like "the shopify preset"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f) if path.lower().endswith(".toml") else json.load(f)
    except OSError as exc:
        raise SourceError(f"{name}: cannot open: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise SourceError(f"{name}: not valid TOML or JSON: {exc}") from None
    except RecursionError:
        raise SourceError(
            f"{name}: nested deeper than {MAX_MAPPING_DEPTH} tables and lists"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise SourceError(f"{name}: expected a [fields] table of our field names")
    return mapping_parse(data, name)


# Tables and lists nest at most this deep in a mapping (conditions in conditions, rules in
# joins and fallbacks; the presets need 7): deeper is refused when the mapping is read, not
# met as a RecursionError on the first item.
MAX_MAPPING_DEPTH = 32


def _depth_check(data: dict, where: str) -> None:
    """SourceError naming the entry (a field, a case's condition) that nests deeper than
    MAX_MAPPING_DEPTH, walked without recursion so that any depth is told the same way."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_MAPPING_DEPTH:
            raise SourceError(
                f"{where}: {path} is nested deeper than {MAX_MAPPING_DEPTH} tables and lists"
            )
        if isinstance(value, dict):
            parts = [(f"{path}.{key}".lstrip("."), child) for key, child in value.items()]
        else:
            parts = [(f"{path}[{i}]", child) for i, child in enumerate(value)]
        # Named by its first three levels (fields.title, cases[0].when), not the whole way.
        stack += [
            (child, depth + 1, at if depth <= 3 else path)
            for at, child in reversed(parts)
            if isinstance(child, dict | list)
        ]


def mapping_parse(data: dict, name: str) -> Mapping:
    where = name
    _depth_check(data, where)
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise SourceError(f"{where}: unknown tables or keys {', '.join(sorted(unknown))}")
    fmt = data.get("format")
    if fmt not in (None, *FORMATS):
        raise SourceError(f"{where}: format is {', '.join(FORMATS)}, not {fmt!r}")
    placeholders = data.get("placeholders", list(PLACEHOLDERS))
    if not isinstance(placeholders, list) or not all(isinstance(p, str) for p in placeholders):
        raise SourceError(f"{where}: placeholders is a list of texts that mean no value")
    partial = data.get("partial", False)
    if not isinstance(partial, bool):
        raise SourceError(f"{where}: partial is true or false, not {partial!r}")
    mapping = Mapping(
        name=name,
        shape=shape_parse(data, where, () if partial else REQUIRED),
        partial=partial,
        format=fmt,
        items=str(data.get("items", "")),
        placeholders=frozenset(placeholders),
        detect=tuple(str(c) for c in data.get("detect", [])),
        item_paths=item_paths_parse(data.get("item_path", "item"), where),
        namespaces=namespaces_parse(data.get("namespaces", {}), where),
    )
    try:
        mapping.owns = owns_parse(data.get("owns"))
    except ProductSyncError as exc:
        raise SourceError(f"{where}: {exc}") from None
    mapping.children = _children(data.get("children"), where, mapping.placeholders)
    mapping.group = _grouping(data.get("group"), where)
    mapping.variants = _variants(data.get("variants"), where)
    if mapping.variants is not None and mapping.group is None:
        raise SourceError(f"{where}: [variants] needs a [group] saying which rows go together")
    skip = data.get("filter", {}).get("skip") if isinstance(data.get("filter"), dict) else None
    if "filter" in data and skip is None:
        raise SourceError(f"{where}: [filter] needs skip, a condition")
    mapping.skip = condition_parse(skip, f"{where}: filter.skip") if skip else None
    return mapping


def _children(children: Any, where: str, placeholders: frozenset) -> Mapping | None:
    """The [children] table: `items`, the nested array's path, and its own [children.fields]."""
    if children is None:
        return None
    if not isinstance(children, dict) or not isinstance(children.get("items"), str):
        raise SourceError(
            f"{where}: [children] needs items, the path of the nested array, "
            "and a [children.fields] table"
        )
    return Mapping(
        name=f"{where} [children]",
        shape=shape_parse(children, f"{where}: [children]", ("upc",)),
        items=children["items"],
        placeholders=placeholders,
    )


def _grouping(group: Any, where: str) -> Grouping | None:
    if group is None:
        return None
    if (
        not isinstance(group, dict)
        or "key" not in group
        or set(group) - {"key", "parent", "children", "any_order"}
        or not isinstance(group.get("any_order", False), bool)
    ):
        raise SourceError(
            f"{where}: [group] needs key (the column that names a product) and optionally "
            "parent (a row's parent's key) or children (the keys of a row's children), or "
            "any_order = true (rows sharing the key anywhere in the file)"
        )
    any_order = group.get("any_order", False)
    rules = {k: rule_parse(v, f"{where}: group.{k}") for k, v in group.items() if k != "any_order"}
    return Grouping(rules["key"], rules.get("parent"), rules.get("children"), any_order)


def _variants(variants: Any, where: str) -> Variants | None:
    if variants is None:
        return None
    here = f"{where}: [variants]"
    if not isinstance(variants, dict):
        raise SourceError(f"{here} is a table with rows, fields and optionally skip, standalone")
    rows = variants.get("rows", "children")
    if rows not in ("all", "children"):
        raise SourceError(f'{here}: rows is "all" (every row of a group) or "children"')
    unknown = set(variants) - {"rows", "skip", "standalone", "fields", "attributes", "cases"}
    if unknown:
        raise SourceError(f"{here}: unknown keys {', '.join(sorted(unknown))}")
    return Variants(
        shape_parse(variants, here, ("upc",)),
        every_row=rows == "all",
        skip=condition_parse(variants["skip"], f"{here}: skip") if "skip" in variants else None,
        standalone=(
            condition_parse(variants["standalone"], f"{here}: standalone")
            if "standalone" in variants
            else None
        ),
    )
