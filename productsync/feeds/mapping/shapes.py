"""Field sets of a mapping: our fields, attributes and product-class options from one foreign
item, chosen per item by conditions; and a group of CSV rows made into one product, with its
variants as children (or a product of one default variant made a standalone product)."""

from dataclasses import dataclass, field
from typing import Any

from productsync.exceptions import SourceError
from productsync.feeds.csvfeed import FIELDS, STOCK_FIELDS, flat_payload
from productsync.feeds.mapping.attributes import AttributeRule, attribute_rule_parse
from productsync.feeds.mapping.rules import (
    Condition,
    Getter,
    Rule,
    condition_parse,
    rule_parse,
    unique,
)

# Besides our flat fields, a mapping may give a dict of attribute codes to values, images
# (a list of references), the slug a new product gets and its barcode (the UPC Oscar shows
# when it is not the sync key upc; "" for none). Each once, whatever FIELDS comes to hold.
MAPPED_FIELDS = tuple(dict.fromkeys((*FIELDS, "barcode", "attributes", "images", "slug")))
CLASS_OPTIONS = ("track_stock", "requires_shipping")
# What an item says of its attributes, for its class: their types and shoppers' names.
DECLARED = ("attribute_types", "attribute_names")


@dataclass(frozen=True)
class FieldSet:
    rules: dict[str, Rule]
    attributes: tuple[AttributeRule, ...] = ()
    class_options: dict[str, Any] = field(default_factory=dict)

    def merged(self, other: "FieldSet") -> "FieldSet":
        """This set with the other's rules, attributes and options taking precedence."""
        codes = {rule.code for rule in other.attributes if rule.code}
        return FieldSet(
            {**self.rules, **other.rules},
            tuple(r for r in self.attributes if not r.code or r.code not in codes)
            + other.attributes,
            {**self.class_options, **other.class_options},
        )

    def paths(self) -> list[str]:
        out = [p for rule in self.rules.values() for p in rule.paths()]
        return out + [p for rule in self.attributes for p in rule.paths()]

    def absent(self, absent: frozenset) -> dict[str, str]:
        """Our fields whose rules read only paths of absent, with the column each reads."""
        return {
            name: rule.paths()[0].removeprefix("parent.")
            for name, rule in self.rules.items()
            if rule.paths() and rule.absent_in(absent)
        }

    def columns(self) -> dict[str, str]:
        """Our field -> the source path it reads first (for messages)."""
        return {name: rule.paths()[0] for name, rule in self.rules.items() if rule.paths()}

    def apply(self, get: Getter, every_row: list[Getter] = (), absent=frozenset()) -> dict:
        """Our flat fields (attributes, attribute_types, class_options included); a field
        whose rule reads only columns of absent (not in the source) is not carried."""
        flat = {}
        for name, rule in self.rules.items():
            if rule.absent_in(absent):
                continue
            if rule.every_row and every_row:
                values = (rule.get(row_get) for row_get in every_row)
                flat[name] = unique(v for value in values for v in _listed(value))
            else:
                flat[name] = rule.get(get)
        if isinstance(flat.get("categories"), str):
            flat["categories"] = [flat["categories"]] if flat["categories"].strip() else []
        if isinstance(flat.get("images"), str):
            flat["images"] = [flat["images"]] if flat["images"].strip() else []
        values = dict(flat["attributes"]) if isinstance(flat.get("attributes"), dict) else {}
        types: dict[str, str] = {}
        names: dict[str, str] = {}
        for rule in self.attributes:
            rule.apply(get, values, types, names)
        if values or isinstance(flat.get("attributes"), dict):
            # Only a table the item gives may be empty: empty means none.
            flat["attributes"] = values
        if types:
            flat["attribute_types"] = types
        if names:
            flat["attribute_names"] = names
        options = {
            name: rule.get(get) if isinstance(rule, Rule) else rule
            for name, rule in self.class_options.items()
        }
        if options:
            flat["class_options"] = options
        if flat.get("slug") in ("", None):
            flat.pop("slug", None)
        return flat


@dataclass(frozen=True)
class Case:
    when: Condition
    fields: FieldSet


@dataclass(frozen=True)
class Shape:
    """The base field set and the cases that change it for the items they hold for."""

    fields: FieldSet
    cases: tuple[Case, ...] = ()

    def for_item(self, get: Getter) -> FieldSet:
        """The base fields changed by every case that holds for the item, in order."""
        fields = self.fields
        for case in self.cases:
            if case.when.holds(get):
                fields = fields.merged(case.fields)
        return fields

    def paths(self) -> list[str]:
        out = self.fields.paths()
        for case in self.cases:
            out += case.when.paths() + case.fields.paths()
        return out

    def pairs_skipped(self) -> dict[str, set[str]]:
        """The codes that pairs rules leave out, by the path of their cell."""
        out: dict[str, set[str]] = {}
        for fields in (self.fields, *(case.fields for case in self.cases)):
            for rule in fields.attributes:
                if rule.pairs is not None and rule.skip:
                    out.setdefault(rule.pairs.paths()[0], set()).update(rule.skip)
        return out


@dataclass(frozen=True)
class Variants:
    """Which rows of a group are the product's variants and how each becomes a child."""

    shape: Shape
    # Every row of the group is a variant (Shopify: the product's own row is the first), or
    # only the rows after the product's.
    every_row: bool = False
    skip: Condition | None = None
    # A product whose only variant meets this is one standalone product (Shopify's
    # "Default Title").
    standalone: Condition | None = None


def group_payload(
    shape: Shape, variants: Variants | None, rows: list[dict], getter, absent=frozenset()
) -> tuple[dict, list[int], tuple[dict, dict]]:
    """A product in our shape from its rows (the product's first); the indexes of the rows
    that became its children in order; and the source columns of our fields (product,
    child) for messages. getter(row, parent) reads a path of a row; absent: the columns the
    source does not have (the fields read from them alone are not carried)."""
    head = getter(rows[0], None)
    every = [getter(row, None) for row in rows]
    fields = shape.for_item(head)
    flat = fields.apply(head, every, absent)
    children, used, child_columns = [], [], {}
    if variants is not None:
        candidates = range(len(rows)) if variants.every_row else range(1, len(rows))
        for i in candidates:
            get = getter(rows[i], rows[0])
            if variants.skip is not None and variants.skip.holds(get):
                continue
            child_fields = variants.shape.for_item(get)
            child_columns = child_columns or child_fields.columns()
            children.append((get, child_fields.apply(get, (), absent)))
            used.append(i)
    columns = (fields.columns(), child_columns)
    if not children:
        return flat_payload(flat), used, columns
    stock_free = {k: v for k, v in flat.items() if k not in STOCK_FIELDS}
    if len(children) == 1 and variants.standalone and variants.standalone.holds(children[0][0]):
        child = children[0][1]
        merged = {**stock_free, **{k: v for k, v in child.items() if k in STOCK_FIELDS}}
        for key in ("attributes", *DECLARED):
            if child.get(key):
                merged[key] = {**flat.get(key, {}), **child[key]}
        return flat_payload(merged), used, (child_columns | columns[0], child_columns)
    payload = flat_payload(stock_free)
    declared = {key: dict(flat.get(key, {})) for key in DECLARED}
    payload["children"] = []
    for _, child in children:
        for key in DECLARED:
            declared[key].update(child.pop(key, {}))
        child.pop("class_options", None)
        payload["children"].append(flat_payload(child))
    payload.update({key: value for key, value in declared.items() if value})
    return payload, used, columns


def shape_parse(data: dict, where: str, required: tuple) -> Shape:
    """[fields] (with [[attributes]] and [class_options]) and [[cases]] of a table."""
    base = fieldset_parse(data, where, required)
    cases = data.get("cases", [])
    if not isinstance(cases, list):
        raise SourceError(f"{where}: cases is a list of [[cases]] tables")
    parsed = []
    for i, case in enumerate(cases):
        here = f"{where}: cases[{i}]"
        if not isinstance(case, dict) or "when" not in case:
            raise SourceError(f"{here} needs when (a condition) and fields")
        unknown = set(case) - {"when", "fields", "attributes", "class_options"}
        if unknown:
            raise SourceError(f"{here}: unknown keys {', '.join(sorted(unknown))}")
        parsed.append(
            Case(condition_parse(case["when"], f"{here}: when"), fieldset_parse(case, here, ()))
        )
    return Shape(base, tuple(parsed))


def fieldset_parse(data: dict, where: str, required: tuple) -> FieldSet:
    fields = data.get("fields", {})
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
    attributes = data.get("attributes", [])
    if not isinstance(attributes, list):
        raise SourceError(f"{where}: attributes is a list of [[attributes]] tables")
    options = data.get("class_options", {})
    if not isinstance(options, dict) or set(options) - set(CLASS_OPTIONS):
        raise SourceError(
            f"{where}: class_options takes {', '.join(CLASS_OPTIONS)} (true, false or a rule)"
        )
    return FieldSet(
        {name: rule_parse(spec, f"{where}: {name}") for name, spec in fields.items()},
        tuple(
            attribute_rule_parse(spec, f"{where}: attributes[{i}]")
            for i, spec in enumerate(attributes)
        ),
        {
            name: value
            if isinstance(value, bool)
            else rule_parse({"transform": "boolean", **_table(value)}, f"{where}: {name}")
            for name, value in options.items()
        },
    )


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _table(spec: Any) -> dict:
    return {"path": spec} if isinstance(spec, str) else spec if isinstance(spec, dict) else {}
