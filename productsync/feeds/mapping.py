"""Mapping files: a foreign feed's columns or JSON paths onto our fields, with transforms."""

import io
import json
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import ijson

from productsync.exceptions import FeedError, SourceError
from productsync.feeds.csvfeed import FIELDS, REQUIRED, csv_dicts, flat_payload, items_merged
from productsync.records import FeedItem, Unparsed

PLACEHOLDERS = ("NULL", "NaN", "[object Object]")
TRUE = frozenset({"true", "yes", "y", "1", "on", "t"})
FALSE = frozenset({"false", "no", "n", "0", "off", "f"})
BREADCRUMB_SEPARATOR = " > "
# Besides our flat fields, a mapping may give a dict of attribute codes to values.
MAPPED_FIELDS = (*FIELDS, "attributes")
# In a [children] mapping, paths under this name read the parent item.
PARENT = "parent"


def _boolean(value: Any) -> Any:
    if isinstance(value, bool) or value in ("", None):
        return value
    lowered = str(value).strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    return value  # left as it is, so validation names the field


def _cents(value: Any) -> Any:
    """Integer minor units (1950) to a decimal price ("19.50")."""
    if value in ("", None) or isinstance(value, bool):
        return value
    try:
        cents = Decimal(str(value).strip())
    except InvalidOperation:
        return value
    if cents != cents.to_integral_value():
        return value
    return str((cents / 100).quantize(Decimal("0.01")))


def _text_transform(method: str) -> Callable[[Any], Any]:
    return lambda value: getattr(value, method)() if isinstance(value, str) else value


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "boolean": _boolean,
    "cents": _cents,
    "upper": _text_transform("upper"),
    "lower": _text_transform("lower"),
    "strip": _text_transform("strip"),
}


@dataclass(frozen=True)
class Rule:
    """How one of our fields gets its value: a path, a constant, or a join of paths."""

    path: str | None = None
    # With a path that gives a list: the path of the same number of names, zipped into a
    # dict of names to values (Medusa's option titles and a variant's option values).
    keys: str | None = None
    value: Any = None
    join: tuple = ()
    separator: str = BREADCRUMB_SEPARATOR
    transform: str | None = None
    # Codes to names (a category id to its breadcrumb); values not listed pass unchanged.
    values: dict = field(default_factory=dict)


@dataclass
class Mapping:
    name: str
    rules: dict[str, Rule]
    format: str | None = None
    items: str = ""
    placeholders: frozenset = field(default_factory=lambda: frozenset(PLACEHOLDERS))
    # Turns the nested array at its `items` path into the item's children (variants).
    children: "Mapping | None" = None
    # Its items carry only what they change (a stock file): runs of it are partial.
    partial: bool = False

    def columns(self) -> list[str]:
        """The source columns or paths the mapping reads."""
        out = []
        for rule in self.rules.values():
            out += [rule.path] if rule.path else [p for p in rule.join if isinstance(p, str)]
        return list(dict.fromkeys(out))

    def _get(self, item: Any, path: str, dotted: bool) -> Any:
        return self._walk(item, path.split(".") if dotted else [path])

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
        if value is None or (isinstance(value, str) and value.strip() in self.placeholders):
            return ""
        if isinstance(value, float) and value != value:  # NaN
            return ""
        return value

    def apply(self, item: Any, dotted: bool) -> Any:
        """Our flat fields from one foreign item."""
        if not isinstance(item, dict):
            return item
        flat = {}
        for name, rule in self.rules.items():
            if rule.keys is not None:
                value = _zipped(
                    self._get(item, rule.keys, dotted), self._get(item, rule.path, dotted)
                )
            elif rule.path is not None:
                value = self._get(item, rule.path, dotted)
            elif rule.join:
                parts = [
                    str(part["value"]) if isinstance(part, dict) else self._get(item, part, dotted)
                    for part in rule.join
                ]
                value = rule.separator.join(str(p).strip() for p in parts if p not in ("", None))
            else:
                value = rule.value
            if isinstance(value, str | int) and str(value) in rule.values:
                value = rule.values[str(value)]
            if rule.transform:
                value = TRANSFORMS[rule.transform](value)
            flat[name] = value
        if "categories" in flat and isinstance(flat["categories"], str):
            flat["categories"] = [flat["categories"]] if flat["categories"].strip() else []
        if self.children is not None:
            flat["children"] = self._children(item, dotted)
        return flat

    def _children(self, item: dict, dotted: bool) -> list:
        """The nested items in our shape; their paths under `parent.` read the item itself."""
        nested = self._get(item, self.children.items, dotted)
        return [
            flat_payload(self.children.apply({**child, PARENT: item}, dotted))
            if isinstance(child, dict)
            else child
            for child in (nested if isinstance(nested, list) else [])
        ]

    def reader(self, fmt: str | None, readers: dict, csv_options: dict):
        """The reader of a source in this mapping's shape, giving items in our shape."""
        if fmt == "csv" and self.children is not None:
            raise SourceError(f"mapping {self.name}: [children] reads nested JSON, not csv")
        if fmt == "csv":
            return lambda stream: self._csv_items(stream, **csv_options)
        if fmt == "json":
            return self._json_items
        if fmt == "jsonl":
            jsonl_items = readers["jsonl"]
            return lambda stream: self._mapped(jsonl_items(stream), dotted=True)
        if fmt is None:
            raise SourceError(
                f"mapping {self.name}: the source's format is unknown: set format in the "
                "mapping or give --format"
            )
        raise SourceError(f"mapping {self.name}: a mapping reads csv, json or jsonl, not {fmt}")

    def _mapped(self, items: Iterator[FeedItem], dotted: bool) -> Iterator[FeedItem]:
        for item in items:
            payload = item.payload
            if isinstance(payload, dict):
                payload = flat_payload(self.apply(payload, dotted))
            yield FeedItem(item.position, payload)

    def _csv_items(self, stream, delimiter=None, encoding=None) -> Iterator[FeedItem]:
        hint = f": the mapping {self.name} reads it"
        rows = csv_dicts(stream, delimiter, encoding, self.columns(), hint)

        def payloads():
            for _, row in rows:
                yield row if isinstance(row, Unparsed) else flat_payload(self.apply(row, False))

        return items_merged(payloads())

    def _json_items(self, stream: io.BufferedReader) -> Iterator[FeedItem]:
        prefix = f"{self.items}.item" if self.items else "item"
        position = 0
        try:
            for payload in ijson.items(stream, prefix, use_float=True):
                mapped = self.apply(payload, True)
                yield FeedItem(
                    position, flat_payload(mapped) if isinstance(mapped, dict) else mapped
                )
                position += 1
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise FeedError(f"malformed JSON after item {position}: {exc}") from None
        if position == 0:
            raise FeedError(f"no items at {prefix!r}: check `items` in the mapping {self.name}")


def _element(items: list, part: str) -> Any:
    if part.isdigit():
        return items[int(part)] if int(part) < len(items) else None
    key, equals, wanted = part.partition("=")
    if equals:
        for element in items:
            if isinstance(element, dict) and str(element.get(key)) == wanted:
                return element
    return None


def _zipped(keys: Any, values: Any) -> Any:
    """Names and values matched by position; a value-less or nameless position is left out."""
    if not isinstance(keys, list) or not isinstance(values, list):
        return {}
    return {
        k: v for k, v in zip(keys, values, strict=False) if k not in ("", None) and v is not None
    }


def _rule(name: str, spec: Any, where: str) -> Rule:
    if isinstance(spec, str):
        return Rule(path=spec)
    if not isinstance(spec, dict):
        raise SourceError(f"{where}: {name} must be a path or a table, not {spec!r}")
    unknown = set(spec) - {"path", "keys", "value", "join", "separator", "transform", "values"}
    sources = [key for key in ("path", "value", "join") if key in spec]
    if (
        unknown
        or len(sources) != 1
        or ("keys" in spec and not (isinstance(spec["keys"], str) and "path" in spec))
    ):
        extra = f"; unknown keys {', '.join(sorted(unknown))}" if unknown else ""
        raise SourceError(
            f"{where}: {name} needs exactly one of path, value or join "
            f"(and optionally keys with a path, separator, transform, values){extra}"
        )
    transform = spec.get("transform")
    if transform is not None and transform not in TRANSFORMS:
        raise SourceError(
            f"{where}: {name}: unknown transform {transform!r} (known: {', '.join(TRANSFORMS)})"
        )
    join = spec.get("join", ())
    if not isinstance(join, list | tuple) or not all(
        isinstance(p, str) or (isinstance(p, dict) and set(p) == {"value"}) for p in join
    ):
        raise SourceError(f"{where}: {name}: join is a list of paths or {{value = ...}} tables")
    return Rule(
        path=spec.get("path"),
        keys=spec.get("keys"),
        value=spec.get("value"),
        join=tuple(join),
        separator=spec.get("separator", BREADCRUMB_SEPARATOR),
        transform=transform,
        values=_values(spec.get("values", {}), f"{where}: {name}"),
    )


def _values(values: Any, where: str) -> dict:
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise SourceError(f"{where}: values is a table of codes to text")
    return values


def mapping_load(path: str) -> Mapping:
    """Read and check a mapping file (TOML or JSON); every problem is a SourceError."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f) if path.lower().endswith(".toml") else json.load(f)
    except OSError as exc:
        raise SourceError(f"mapping {path}: cannot open: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise SourceError(f"mapping {path}: not valid TOML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SourceError(f"mapping {path}: expected a [fields] table of our field names")
    fmt = data.get("format")
    if fmt not in (None, "csv", "json", "jsonl"):
        raise SourceError(f"mapping {path}: format is csv, json or jsonl, not {fmt!r}")
    placeholders = frozenset(data.get("placeholders", list(PLACEHOLDERS)))
    partial = data.get("partial", False)
    if not isinstance(partial, bool):
        raise SourceError(f"mapping {path}: partial is true or false, not {partial!r}")
    return Mapping(
        name=path,
        rules=_rules(data.get("fields"), () if partial else REQUIRED, f"mapping {path}"),
        partial=partial,
        format=fmt,
        items=str(data.get("items", "")),
        placeholders=placeholders,
        children=_children(data.get("children"), path, placeholders),
    )


def _children(children: Any, path: str, placeholders: frozenset) -> Mapping | None:
    """The [children] table: `items`, the nested array's path, and its own [children.fields]."""
    if children is None:
        return None
    if not isinstance(children, dict) or not isinstance(children.get("items"), str):
        raise SourceError(
            f"mapping {path}: [children] needs items, the path of the nested array, "
            "and a [children.fields] table"
        )
    return Mapping(
        name=f"{path} [children]",
        rules=_rules(children.get("fields"), ("upc",), f"mapping {path}: [children]"),
        items=children["items"],
        placeholders=placeholders,
    )


def _rules(fields: Any, required: tuple, where: str) -> dict[str, Rule]:
    if not isinstance(fields, dict):
        raise SourceError(f"{where}: expected a [fields] table of our field names")
    unknown = sorted(set(fields) - set(MAPPED_FIELDS))
    if unknown:
        raise SourceError(
            f"{where}: unknown fields {', '.join(unknown)} (known: {', '.join(MAPPED_FIELDS)})"
        )
    missing = [name for name in required if name not in fields]
    if missing:
        raise SourceError(f"{where}: required fields not mapped: {', '.join(missing)}")
    return {name: _rule(name, spec, where) for name, spec in fields.items()}
