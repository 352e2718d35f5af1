"""A mapped item that fails validation, told in the source's terms: its CSV line and column
beside our field, a plain message, and the source rows as the raw payload."""

import re
from typing import Any

from pydantic import ValidationError

from productsync.exceptions import RecordError
from productsync.records import ProductRecord, Unparsed, payload_dump, record_parse


def _number(error: dict) -> str:
    return f"{error['input']!r} is not a number"


def _limit(word: str, key: str) -> Any:
    return lambda e: f"{e['input']!r} is {word} {e.get('ctx', {}).get(key)}"


# pydantic's error types, in our words.
MESSAGES = {
    "missing": lambda e: "is missing",
    "decimal_parsing": _number,
    "decimal_type": _number,
    "float_parsing": _number,
    "float_type": _number,
    "int_parsing": lambda e: f"{e['input']!r} is not a whole number",
    "int_type": lambda e: f"{e['input']!r} is not a whole number",
    "int_from_float": lambda e: f"{e['input']!r} is not a whole number",
    "finite_number": lambda e: f"{e['input']!r} is not a finite number",
    "decimal_max_digits": lambda e: f"{e['input']!r} has more digits than a price may have",
    "decimal_max_places": lambda e: f"{e['input']!r} has more than 2 decimal places",
    "decimal_whole_digits": lambda e: f"{e['input']!r} has more digits than a price may have",
    "greater_than_equal": _limit("below", "ge"),
    "less_than_equal": _limit("above", "le"),
    "bool_parsing": lambda e: f"{e['input']!r} is not true or false",
    "bool_type": lambda e: f"{e['input']!r} is not true or false",
    "string_type": lambda e: f"expected text, got {e['input']!r}",
    "string_too_short": lambda e: "is empty",
    "string_too_long": lambda e: (
        f"is {len(e['input'])} characters long, more than {e.get('ctx', {}).get('max_length')}"
    ),
    "string_pattern_mismatch": lambda e: f"{e['input']!r} is not in the expected form",
    "list_type": lambda e: f"expected a list, got {e['input']!r}",
    "dict_type": lambda e: f"expected a table of values, got {e['input']!r}",
}
CHILD = re.compile(r"^children\[(\d+)\]\.")
STOCK = re.compile(r"^stockrecords\[\d+\]\.")


def plain_message(payload: dict, exc: RecordError) -> str:
    """Our field and what is wrong with its value, without pydantic's sentences."""
    try:
        ProductRecord.model_validate(payload)
    except ValidationError as invalid:
        error = invalid.errors(include_url=False)[0]
        say = MESSAGES.get(error["type"])
        if say is not None:
            return f"{exc.field}: {say(error)}" if exc.field else say(error)
    return str(exc)


def source_check(
    payload: Any, rows: list[tuple[int, Any]], columns: tuple[dict, dict], unit: str = "line"
) -> Any | Unparsed:
    """The payload when it is a valid record, else an Unparsed whose text is the source rows
    (with their line numbers) and whose message names the line and the column. rows are the
    (line, row) of the product first, then of each child in order; columns the source path of
    each of our fields, for the product and for its children."""
    if not isinstance(payload, dict):
        return payload
    try:
        record_parse(payload)
    except RecordError as exc:
        message = plain_message(payload, exc)
        field, row = exc.field or "", 0
        child = CHILD.match(field)
        fields = columns[0]
        if child is not None:
            fields = columns[1]
            row = int(child.group(1)) + 1 if int(child.group(1)) + 1 < len(rows) else 0
        ours = STOCK.sub("", CHILD.sub("", field)).split(".")[0]
        column = fields.get(ours)
        where = f"{unit} {rows[row][0]}"
        where += f", column {column!r}" if column else ""
        upc = payload.get("upc")
        upc = upc if isinstance(upc, str) else "" if upc is None else str(upc)
        return Unparsed(source_text(rows, unit, row), f"{where}: {message}", field, upc)
    return payload


# A failed item's raw payload keeps this many of its source rows (the product's first), the
# row its message names, and the count of the others: a product of thousands of rows fails
# with a payload of a few, not all of them once per failure.
SOURCE_ROWS_KEPT = 20


def source_text(rows: list[tuple[int, Any]], unit: str = "line", named: int = 0) -> str:
    """The source rows of an item with their line numbers, as JSON text: at most
    SOURCE_ROWS_KEPT of them and the row named (an index), with a count of those left out."""
    indexes = list(range(min(len(rows), SOURCE_ROWS_KEPT)))
    if named >= len(indexes):
        indexes.append(named)
    kept = [{unit: rows[i][0], "row": rows[i][1]} for i in indexes]
    if len(rows) > len(indexes):
        kept.append({"rows_left_out": len(rows) - len(indexes)})
    return payload_dump(kept[0] if len(kept) == 1 else kept)
