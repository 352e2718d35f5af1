"""What a failed item says, in a shop team's words: the field, the bad value quoted, and what
was expected ("price: 'abc' is not a number"), never pydantic's own phrases."""

from typing import Any

# Characters of a bad value quoted in a message; the raw payload keeps the whole.
QUOTED_CHARS = 60

# What each kind of pydantic error means for a feed's value, by its type.
EXPECTED = {
    "decimal_parsing": "is not a number",
    "decimal_type": "is not a number",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "finite_number": "is not a number",
    "int_parsing": "is not a whole number",
    "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
    "bool_parsing": "is not yes or no (true, false, 1, 0)",
    "bool_type": "is not yes or no (true, false, 1, 0)",
    "string_type": "is not text",
    "list_type": "is not a list",
    "dict_type": "is not a set of named values",
    "model_type": "is not a set of named values",
    "datetime_parsing": "is not a date and time",
    "datetime_from_date_parsing": "is not a date and time",
    "date_parsing": "is not a date",
    "decimal_max_places": "has too many decimal places",
    "decimal_max_digits": "has too many digits",
}


def value_quoted(value: Any) -> str:
    """A feed's value as a message quotes it: short, printable, in quotes when text."""
    if isinstance(value, str) and len(value) > QUOTED_CHARS:
        value = value[:QUOTED_CHARS] + "…"
    text = repr(value) if isinstance(value, str) else _plain(value)
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return text if len(text) <= 2 * QUOTED_CHARS else text[: 2 * QUOTED_CHARS] + "…"


def _plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def error_location(loc: tuple) -> str:
    """The field path of a pydantic error's loc, as an item's failure names it."""
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an invalid dict key: the key names it
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_message(error: dict, where: str) -> str:
    """One pydantic error (from errors(include_url=False)) as the item's failure message."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    quoted = value_quoted(value)
    if kind in EXPECTED:
        return f"{where}: {quoted} {EXPECTED[kind]}"
    if kind == "string_too_short":
        return f"{where}: is empty" if value == "" else f"{where}: {quoted} is too short"
    if kind == "string_too_long":
        return f"{where}: {quoted} is longer than {ctx.get('max_length')} characters"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        limit = next(iter(ctx.values()), "")
        words = {"greater_than_equal": "less than", "greater_than": "not more than"}
        words |= {"less_than_equal": "more than", "less_than": "not less than"}
        return f"{where}: {quoted} is {words[kind]} {limit}"
    if kind == "string_pattern_mismatch":
        return f"{where}: {quoted} is not in the expected form"
    if kind == "extra_forbidden":
        return f"{where}: is not a field of this feed"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"
