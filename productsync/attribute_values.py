"""A feed's attribute values typed as Oscar's attribute of each type stores them."""

import datetime as dt
import math
from typing import Any

from django.conf import settings
from django.utils import timezone

from productsync.records import number_text_plain


def _as_number(value: Any, kind: type):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError
    if isinstance(value, str) and not number_text_plain(value):
        raise ValueError
    number = kind(value.strip()) if isinstance(value, str) else value
    if not math.isfinite(number):
        raise ValueError
    if kind is int:
        if number != int(number):
            raise ValueError
        number = int(number)
        if not -(2**31) <= number < 2**31:
            raise ValueError  # Oscar's value_integer is a 32-bit IntegerField
    return kind(number)


def _as_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if isinstance(value, str | int) and str(value).strip().lower() in words:
        return words[str(value).strip().lower()]
    raise ValueError


def _as_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError
    return str(value)


def _as_date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise ValueError
    return dt.date.fromisoformat(value.strip())


def _as_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError
    moment = dt.datetime.fromisoformat(value.strip())
    if settings.USE_TZ and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _as_option(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise ValueError
    return value.strip()


def _as_options(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError
    return list(dict.fromkeys(_as_option(v) for v in value))


# Oscar attribute type -> (converter of a feed value, what the error message says is expected).
ATTRIBUTE_TYPES = {
    "text": (_as_text, "text"),
    "richtext": (_as_text, "text"),
    "integer": (lambda v: _as_number(v, int), "an integer"),
    "float": (lambda v: _as_number(v, float), "a number"),
    "boolean": (_as_boolean, "true or false"),
    "date": (_as_date, "a date (YYYY-MM-DD)"),
    "datetime": (_as_datetime, "an ISO 8601 date and time"),
    "option": (_as_option, "the name of one option"),
    "multi_option": (_as_options, "a list of option names"),
}


def attribute_value(kind: str, value: Any) -> Any:
    """The Python value of a feed value for an Oscar attribute of type kind; ValueError with
    the reason when the value does not fit (the caller names the attribute)."""
    if kind not in ATTRIBUTE_TYPES:
        raise ValueError(f"attributes of type {kind!r} cannot be synced from a feed")
    convert, expected = ATTRIBUTE_TYPES[kind]
    try:
        return convert(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"expected {expected} ({kind} attribute), got {value!r}") from None
