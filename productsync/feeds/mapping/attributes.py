"""The mapping language's attribute rules: product attributes from a foreign item, with the
names shoppers read and the units their values are in."""

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from productsync.attribute_values import ATTRIBUTE_TYPES
from productsync.exceptions import SourceError
from productsync.feeds.mapping.rules import Getter, Rule, attribute_code, empty, rule_parse

# Grams in one of each unit a platform gives a weight in (Shopify's Variant Weight Unit).
GRAMS = {"g": 1, "kg": 1000, "lb": Decimal("453.59237"), "lbs": Decimal("453.59237")}
GRAMS["oz"] = Decimal("28.349523125")


@dataclass(frozen=True)
class AttributeRule:
    """Attributes from an item: one with a fixed code; one named by another cell (the code
    made from that name: "Shoe size" -> shoe_size, the name kept for shoppers); or many packed
    in one cell as `code=value,code=value` (pairs). Types say which Oscar attribute type each
    one is; label is the name shoppers read; unit follows a text value ("0.5 kg"), converted
    from grams into that unit when grams is set."""

    value: Rule | None = None
    code: str = ""
    name: Rule | None = None
    type: str = "text"
    pairs: Rule | None = None
    pair_separator: str = ","
    equals: str = "="
    # For pairs: a type and a shoppers' name per code (others: `type`, named after the code),
    # the separator of a multi_option's names, and codes left out.
    types: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    list_separator: str = "|"
    skip: frozenset = frozenset()
    label: str = ""
    unit: Rule | None = None
    grams: bool = False

    def paths(self) -> list[str]:
        rules = (self.value, self.name, self.pairs, self.unit)
        return [p for rule in rules if rule for p in rule.paths()]

    def apply(self, get: Getter, values: dict, types: dict, names: dict) -> None:
        """Add this rule's attributes (code -> value), their types and their shoppers' names
        to the three dicts."""
        if self.pairs is not None:
            self._pairs_apply(get, values, types, names)
            return
        label = self.label
        if self.name is not None:
            label = str(self.name.get(get) or "").strip()
        code = attribute_code(label) if self.name is not None else self.code
        value = self.value.get(get)
        if self.unit is not None and not empty(value):
            value = _with_unit(value, str(self.unit.get(get) or "").strip(), self.grams)
        if code and not empty(value):
            if self.type == "multi_option" and not isinstance(value, list):
                value = [value]
            values[code], types[code] = _typed(value, self.type), self.type
            if label:
                names[code] = label[:128]

    def _pairs_apply(self, get: Getter, values: dict, types: dict, names: dict) -> None:
        cell = self.pairs.get(get)
        for pair in str(cell or "").split(self.pair_separator):
            code, equals, value = pair.partition(self.equals)
            code = attribute_code(code)
            if equals and code and code not in self.skip and value.strip():
                kind = self.types.get(code, self.type)
                if kind == "multi_option":
                    value = [v.strip() for v in value.split(self.list_separator) if v.strip()]
                values[code], types[code] = _typed(value, kind), kind
                if code in self.labels:
                    names[code] = self.labels[code]


# A number with a unit is written plainly up to this many digits either side of its point.
PLAIN_DIGITS = 15


def _with_unit(value: Any, unit: str, grams: bool) -> str:
    """The value followed by its unit, a number written plainly ("0.2 lbs" of ".2"); with
    grams, a weight in grams shown in the unit ("8 oz" of 226.796185), and a weight of 0 is
    no weight (""). A value that is not a number is kept as it is."""
    text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return f"{text} {'g' if grams else unit}".strip()
    if not number.is_finite() or abs(number.adjusted()) > PLAIN_DIGITS:
        # As given: "1E+999999999" stays 12 characters, not a billion.
        return f"{text} {'g' if grams else unit}".strip()
    if grams:
        if number == 0:
            return ""
        unit = unit.lower() if unit.lower() in GRAMS else "g"
        number = (number / GRAMS[unit]).quantize(Decimal("0.01"))
        text = f"{number:f}".rstrip("0").rstrip(".")
    else:
        text = f"{number:f}"
    return f"{text} {unit}".strip()


def _typed(value: Any, kind: str) -> Any:
    if kind == "option" and isinstance(value, list):
        return value[0] if value else None
    return value.strip() if isinstance(value, str) else value


ATTRIBUTE_KEYS = frozenset(
    {"code", "name", "type", "pairs", "pair_separator", "equals", "types", "list_separator"}
    | {"skip", "label", "labels", "unit", "grams"}
)


def attribute_rule_parse(spec: Any, where: str) -> AttributeRule:
    if not isinstance(spec, dict):
        raise SourceError(f"{where} is a table with code or name and a path, or pairs")
    kinds = [key for key in ("code", "name", "pairs") if key in spec]
    if len(kinds) != 1:
        raise SourceError(f"{where} needs exactly one of code, name or pairs")
    kind = spec.get("type", "text")
    types, labels = spec.get("types", {}), spec.get("labels", {})
    if not isinstance(types, dict):
        raise SourceError(f"{where}: types is a table of attribute codes to types")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise SourceError(f"{where}: labels is a table of attribute codes to names")
    for name in (kind, *types.values()):
        if name not in ATTRIBUTE_TYPES:
            raise SourceError(
                f"{where}: unknown attribute type {name!r} (known: {', '.join(ATTRIBUTE_TYPES)})"
            )
    value_spec = {k: v for k, v in spec.items() if k not in ATTRIBUTE_KEYS}
    if "pairs" in spec:
        if value_spec:
            raise SourceError(f"{where}: pairs takes no {', '.join(sorted(value_spec))}")
        return AttributeRule(
            pairs=rule_parse(spec["pairs"], f"{where}: pairs"),
            type=kind,
            pair_separator=str(spec.get("pair_separator", ",")),
            equals=str(spec.get("equals", "=")),
            types={attribute_code(k): v for k, v in types.items()},
            labels={attribute_code(k): v[:128] for k, v in labels.items()},
            list_separator=str(spec.get("list_separator", "|")),
            skip=frozenset(attribute_code(s) for s in spec.get("skip", [])),
        )
    code = spec.get("code", "")
    if "code" in spec and (not isinstance(code, str) or attribute_code(code) != code or not code):
        raise SourceError(f"{where}: code {code!r} is not an attribute code (a-z, 0-9, _)")
    return AttributeRule(
        value=rule_parse(value_spec, f"{where}: value"),
        code=code,
        name=rule_parse(spec["name"], f"{where}: name") if "name" in spec else None,
        type=kind,
        **_shown(spec, where, kind),
    )


def _shown(spec: dict, where: str, kind: str) -> dict:
    """label, unit and grams of an attribute rule, checked."""
    label, grams = spec.get("label", ""), spec.get("grams", False)
    if not isinstance(label, str) or len(label) > 128:
        raise SourceError(f"{where}: label is the attribute's name for shoppers (text)")
    if not isinstance(grams, bool) or (grams and "unit" not in spec):
        raise SourceError(f"{where}: grams is true or false, with a unit")
    if "unit" in spec and kind != "text":
        raise SourceError(f"{where}: a value with a unit is text, not {kind}")
    unit = rule_parse(_unit_table(spec["unit"]), f"{where}: unit") if "unit" in spec else None
    return {"label": label, "unit": unit, "grams": grams}


def _unit_table(spec: Any) -> Any:
    """A unit is a constant ("kg") or a rule table ({path = "Variant Weight Unit"})."""
    return {"value": spec} if isinstance(spec, str) else spec
