"""The mapping language's rules: how one of our fields, a condition or an attribute gets its
value from a foreign item (a CSV row or a JSON object), and how a mapping file spells them."""

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import regex

from productsync.exceptions import RecordError, SourceError
from productsync.records import number_text_plain

BREADCRUMB_SEPARATOR = " > "
TRUE = frozenset({"true", "yes", "y", "1", "on", "t"})
FALSE = frozenset({"false", "no", "n", "0", "off", "f"})
# A value's path in the item: a CSV column, or a dotted JSON path.
Getter = Callable[[str], Any]


def _boolean(value: Any) -> Any:
    if isinstance(value, bool) or value in ("", None):
        return value
    lowered = str(value).strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    return value  # left as it is, so validation names the field


# Prices beyond this many minor units are left as they are, for validation to refuse.
MAX_CENTS = Decimal(10) ** 16


def _cents(value: Any) -> Any:
    """Integer minor units (1950) to a decimal price ("19.50")."""
    if value in ("", None) or isinstance(value, bool) or not number_text_plain(str(value)):
        return value
    try:
        cents = Decimal(str(value).strip())
    except InvalidOperation:
        return value
    if not cents.is_finite() or abs(cents) >= MAX_CENTS or cents != cents.to_integral_value():
        return value
    return str((cents / 100).quantize(Decimal("0.01")))


# A number a spreadsheet wrote in exponent notation ("3.65275E+11"); possessive, no
# backtracking whatever a cell holds.
_EXPONENT = re.compile(r"[-+]?[0-9]++(?:[.,][0-9]*+)?[eE][-+]?[0-9]++")


def _barcode(value: Any) -> Any:
    """A barcode as given, stripped; none ("") for one a spreadsheet wrote in exponent
    notation: its digits are lost, and a wrong UPC is worse than none."""
    if not isinstance(value, str):
        return value
    value = value.strip()
    return "" if _EXPONENT.fullmatch(value) else value


def _text_transform(method: str) -> Callable[[Any], Any]:
    return lambda value: getattr(value, method)() if isinstance(value, str) else value


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "boolean": _boolean,
    "cents": _cents,
    "barcode": _barcode,
    "upper": _text_transform("upper"),
    "lower": _text_transform("lower"),
    "strip": _text_transform("strip"),
}


def empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def unique(values) -> list:
    """The non-empty values, each once, in order (values may be unhashable JSON). Seen values
    are kept in a dict, so a cell of many thousand values costs time in proportion to them."""
    seen: dict = {}
    for value in values:
        if not empty(value):
            seen.setdefault(_seen_key(value), value)
    return list(seen.values())


def _seen_key(value: Any) -> Any:
    """The value itself, or for a JSON list or object its canonical text (tagged, so it never
    equals a plain string of the same text)."""
    try:
        hash(value)
    except TypeError:
        return ("json", json.dumps(value, sort_keys=True, default=repr))
    return value


def attribute_code(name: Any) -> str:
    """An Oscar attribute code (a Python identifier) from a name: "Shoe size" -> shoe_size."""
    return _code(str(name))


@functools.lru_cache(maxsize=4096)  # a file names the same few attributes on every row
def _code(name: str) -> str:
    code = re.sub(r"\W+", "_", name.strip().lower(), flags=re.ASCII).strip("_")
    return f"_{code}" if code[:1].isdigit() else code[:128]


# A mapping's pattern gives up on a value after this long: one that backtracks, such as
# ^(a+)+$ on "aaa...!", would otherwise hold the run for hours on a cell of 40 characters.
PATTERN_SECONDS = 0.5


class Pattern:
    """A mapping's regular expression (the `regex` module, which takes a timeout; Python's
    syntax), matched within PATTERN_SECONDS. After one timeout it is not tried again: every
    item it would read fails with the same message, so a feed of such cells cannot hold the
    run for PATTERN_SECONDS each."""

    def __init__(self, text: str, where: str) -> None:
        self.text, self.where = text, where
        self.compiled = regex.compile(text)
        self.gave_up = False

    @property
    def groups(self) -> int:
        return self.compiled.groups

    def search(self, value: str) -> regex.Match | None:
        if not self.gave_up:
            try:
                return self.compiled.search(value, timeout=PATTERN_SECONDS)
            except TimeoutError:
                self.gave_up = True
        raise RecordError(
            f"{self.where}: pattern {self.text!r} gave up after {PATTERN_SECONDS} s (it "
            "backtracks: write it without a repeat inside a repeat); every value it reads fails"
        )


@dataclass(frozen=True)
class Rule:
    """How a value is found: a path, a constant, a join of rules or a zip of two lists; then
    split into a list, replaced within, translated by `values`, transformed; when that leaves
    nothing, the first fallback rule that gives something."""

    path: str | None = None
    # With a path that gives a list: the path of the same number of names, zipped into a
    # dict of names to values (Medusa's option titles and a variant's option values).
    keys: str | None = None
    value: Any = None
    join: tuple["Rule", ...] = ()
    separator: str = BREADCRUMB_SEPARATOR
    split: str | None = None
    # A regular expression with one group: a value becomes what the group matched (or "").
    pattern: Pattern | None = None
    replace: tuple[tuple[str, str], ...] = ()
    # Codes to names (a category id to its breadcrumb); values not listed pass unchanged.
    values: dict = field(default_factory=dict)
    transform: str | None = None
    fallback: tuple["Rule", ...] = ()
    # In a group of CSV rows: the values of every row of the group, in order, once each.
    every_row: bool = False

    def paths(self) -> list[str]:
        out = [p for p in (self.path, self.keys) if p]
        for rule in (*self.join, *self.fallback):
            out += rule.paths()
        return out

    def absent_in(self, absent: frozenset) -> bool:
        """Whether every value the rule could give is read from a path of absent (columns
        the source does not have): then the item does not carry the field."""
        if self.path is not None:
            own = self.path in absent
        else:  # a constant is always there; a join is when one of its parts is
            own = bool(self.join) and all(rule.absent_in(absent) for rule in self.join)
        return own and all(rule.absent_in(absent) for rule in self.fallback)

    def get(self, get: Getter) -> Any:
        value = self._raw(get)
        if self.split is not None and isinstance(value, str):
            value = value.split(self.split)
        if isinstance(value, list) and (self.split is not None or self.replace or self.values):
            value = unique(map(self._refine, value))
        else:
            value = self._refine(value)
        for rule in self.fallback:
            if not empty(value):
                break
            value = rule.get(get)
        return value

    def _raw(self, get: Getter) -> Any:
        if self.keys is not None:
            return _zipped(get(self.keys), get(self.path))
        if self.path is not None:
            return get(self.path)
        if self.join:
            parts = (rule.get(get) for rule in self.join)
            # A part that is a list (an XML element repeated) gives each of its values.
            flat = (v for p in parts for v in (p if isinstance(p, list) else [p]))
            return self.separator.join(str(p).strip() for p in flat if not empty(p))
        return self.value

    def _refine(self, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip() if self.split is not None else value
            if self.pattern is not None:
                match = self.pattern.search(value)
                value = match.group(1) if match else ""
            for old, new in self.replace:
                value = value.replace(old, new)
        if isinstance(value, str | int) and str(value) in self.values:
            value = self.values[str(value)]
        if self.transform:
            value = TRANSFORMS[self.transform](value)
        return value


def _zipped(keys: Any, values: Any) -> Any:
    """Names and values matched by position; a value-less or nameless position is left out."""
    if not isinstance(keys, list) or not isinstance(values, list):
        return {}
    return {
        k: v for k, v in zip(keys, values, strict=False) if k not in ("", None) and v is not None
    }


RULE_KEYS = frozenset(
    {"path", "keys", "value", "join", "separator", "split", "pattern", "replace", "values"}
    | {"transform", "fallback", "every_row"}
)


def rule_parse(spec: Any, where: str) -> Rule:
    """A rule from a mapping file: a path, or a table of RULE_KEYS; SourceError on mistakes."""
    if isinstance(spec, str):
        return Rule(path=spec)
    if not isinstance(spec, dict):
        raise SourceError(f"{where} must be a path or a table, not {spec!r}")
    unknown = set(spec) - RULE_KEYS
    sources = [key for key in ("path", "value", "join") if key in spec]
    if unknown or len(sources) != 1 or ("keys" in spec and "path" not in spec):
        extra = f"; unknown keys {', '.join(sorted(unknown))}" if unknown else ""
        raise SourceError(
            f"{where} needs exactly one of path, value or join (and optionally keys with a "
            f"path, {', '.join(sorted(RULE_KEYS - {'path', 'value', 'join', 'keys'}))}){extra}"
        )
    for key in ("path", "keys", "separator", "split", "pattern"):
        if key in spec and not (isinstance(spec[key], str) and spec[key]):
            raise SourceError(f"{where}: {key} must be text, not {spec[key]!r}")
    transform = spec.get("transform")
    if transform is not None and transform not in TRANSFORMS:
        raise SourceError(
            f"{where}: unknown transform {transform!r} (known: {', '.join(TRANSFORMS)})"
        )
    replace = spec.get("replace", {})
    if not isinstance(replace, dict) or not all(isinstance(v, str) for v in replace.values()):
        raise SourceError(f"{where}: replace is a table of text to its replacement")
    values = spec.get("values", {})
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise SourceError(f"{where}: values is a table of codes to text")
    pattern = spec.get("pattern")
    try:
        pattern = Pattern(pattern, where) if pattern is not None else None
    except regex.error as exc:
        raise SourceError(f"{where}: pattern {spec['pattern']!r}: {exc}") from None
    if pattern is not None and pattern.groups != 1:
        raise SourceError(f"{where}: pattern needs exactly one (group), the value kept")
    if not isinstance(spec.get("every_row", False), bool):
        raise SourceError(f"{where}: every_row is true or false")
    return Rule(
        path=spec.get("path"),
        keys=spec.get("keys"),
        value=spec.get("value"),
        join=_rules(spec.get("join", []), f"{where}: join", constants=True),
        separator=spec.get("separator", BREADCRUMB_SEPARATOR),
        split=spec.get("split"),
        pattern=pattern,
        replace=tuple(replace.items()),
        values=values,
        transform=transform,
        fallback=_rules(spec.get("fallback", []), f"{where}: fallback"),
        every_row=spec.get("every_row", False),
    )


def _rules(specs: Any, where: str, constants: bool = False) -> tuple[Rule, ...]:
    if not isinstance(specs, list):
        raise SourceError(f"{where} is a list of paths or rule tables, not {specs!r}")
    return tuple(rule_parse(spec, f"{where}[{i}]") for i, spec in enumerate(specs))


CONDITION_TESTS = ("equals", "not_equals", "in", "not_in", "empty", "contains")


@dataclass(frozen=True)
class Condition:
    """A test of one value: equals, not_equals, in, not_in (lists), empty (true/false) or
    contains (text); `all` / `any` combine conditions."""

    path: str = ""
    test: str = ""
    operand: Any = None
    all: tuple["Condition", ...] = ()
    any: tuple["Condition", ...] = ()

    def paths(self) -> list[str]:
        return [self.path] if self.path else [p for c in (*self.all, *self.any) for p in c.paths()]

    def holds(self, get: Getter) -> bool:
        if self.all or self.any:
            return all(c.holds(get) for c in self.all) and (
                not self.any or any(c.holds(get) for c in self.any)
            )
        value = get(self.path)
        text = "" if value is None else str(value).strip()
        if self.test == "empty":
            return empty(text) == self.operand
        if self.test == "contains":
            return self.operand in text
        if self.test in ("in", "not_in"):
            return (text in self.operand) == (self.test == "in")
        return (text == self.operand) == (self.test == "equals")

    def __str__(self) -> str:
        if self.all or self.any:
            joined = " and ".join(map(str, self.all)) + " or ".join(map(str, self.any))
            return f"({joined})"
        return f"{self.path} {self.test.replace('_', ' ')} {self.operand!r}"


def condition_parse(spec: Any, where: str) -> Condition:
    if not isinstance(spec, dict):
        raise SourceError(f"{where} is a table such as {{path = ..., equals = ...}}")
    if set(spec) in ({"all"}, {"any"}):
        parts = spec.get("all") or spec.get("any")
        if not isinstance(parts, list) or not parts:
            raise SourceError(f"{where}: all/any is a list of conditions")
        parsed = tuple(condition_parse(p, f"{where}[{i}]") for i, p in enumerate(parts))
        return Condition(all=parsed) if "all" in spec else Condition(any=parsed)
    tests = [key for key in CONDITION_TESTS if key in spec]
    if not isinstance(spec.get("path"), str) or len(tests) != 1 or len(spec) != 2:
        raise SourceError(
            f"{where} needs a path and one of {', '.join(CONDITION_TESTS)} (or all/any)"
        )
    test, operand = tests[0], spec[tests[0]]
    if test in ("in", "not_in"):
        if not isinstance(operand, list):
            raise SourceError(f"{where}: {test} is a list of values")
        operand = frozenset(str(v) for v in operand)
    elif test == "empty":
        if not isinstance(operand, bool):
            raise SourceError(f"{where}: empty is true or false")
    else:
        operand = str(operand)
    return Condition(spec["path"], test, operand)
