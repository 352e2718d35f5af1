"""Feeds as code: `[[feed]]` tables of a TOML file loaded into the database, and dumped back
in the same form (loading a dump changes nothing)."""

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError

from productsync.exceptions import ProductSyncError
from productsync.feed_models import emails_split
from productsync.models import Feed
from productsync.services.feeds import feeds_save_atomic

# The fields a file gives, in the order a dump writes them; the rest are the feed's state.
FIELDS = (
    "name",
    "kind",
    "source",
    "partner",
    "format",
    "preset",
    "batch_size",
    "schedule",
    "hide_missing",
    "allow_mass_change",
    "stock_authoritative",
    "max_failures",
    "only",
    "owns",
    "enabled",
    "credentials",
    "archive_to",
    "sheet",
    "alert_emails",
    "alert_webhook",
    "overdue_after",
    "mapping",
)
TEXT_FIELDS = frozenset(FIELDS) - {
    "batch_size",
    "hide_missing",
    "allow_mass_change",
    "stock_authoritative",
    "max_failures",
    "enabled",
    "alert_emails",
    "overdue_after",
    "owns",
}
# Fields true or false, false by default (left out of a dump).
FLAGS = ("hide_missing", "allow_mass_change", "stock_authoritative")
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


class FeedFileError(ProductSyncError):
    """A feeds file that cannot be loaded: one line naming the feed and the field."""


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def duration_parse(text: str) -> timedelta:
    """'26h', '1d12h', '90m', '45s' as a timedelta; ValueError otherwise."""
    match = DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not text.strip():
        raise ValueError(f"{text!r} is not a duration such as '26h', '1d12h' or '90m'")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def duration_text(value: timedelta) -> str:
    """A duration as duration_parse reads it ('1d2h'), whole seconds."""
    left, parts = int(value.total_seconds()), []
    for unit, size in UNITS:
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def _value(key: str, raw):
    """A file's value of key as the model field holds it; ValueError saying why not."""
    if key in TEXT_FIELDS:
        if not isinstance(raw, str):
            raise ValueError(f"expected a text, not {raw!r}")
        return raw
    if key == "batch_size":
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
            raise ValueError(f"expected a whole number of items, not {raw!r}")
        return raw
    if key in FLAGS or key == "enabled":
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, not {raw!r}")
        return raw
    if key == "max_failures":  # 50 or "10%"
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ValueError(f"expected a number of items or a percentage, not {raw!r}")
        return str(raw)
    if key == "owns":  # a list of our field names, or them comma-separated
        names = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("expected a list of field names")
        return ",".join(n.strip() for n in names if n.strip())
    if key == "alert_emails":
        if isinstance(raw, str):
            raw = emails_split(raw)
        if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
            raise ValueError("expected a list of e-mail addresses")
        return ", ".join(a.strip() for a in raw if a.strip())
    return duration_parse(raw)  # overdue_after


def _defaults() -> dict:
    blank = Feed()
    return {key: getattr(blank, key) for key in FIELDS if key != "name"}


def _feed_from(table: object, number: int, existing: dict[str, Feed]) -> tuple[Feed, bool]:
    """The feed a [[feed]] table describes (fields it leaves out take their defaults), and
    whether it differs from the stored one; FeedFileError naming the feed and the field."""
    where = f"feed #{number}"
    if not isinstance(table, dict):
        raise FeedFileError(f"{where}: expected a [[feed]] table")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise FeedFileError(f"{where}: name: every feed needs a name")
    where = f"feed {name!r}"
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise FeedFileError(f"{where}: {unknown[0]}: unknown field (known: {', '.join(FIELDS)})")
    values = _defaults()
    for key, raw in table.items():
        try:
            values[key] = _value(key, raw)
        except ValueError as exc:
            raise FeedFileError(f"{where}: {key}: {exc}") from None
    feed = existing.get(name) or Feed(name=name)
    before = {key: getattr(feed, key) for key in values} if feed.pk else None
    for key, value in values.items():
        setattr(feed, key, value)
    feed.alert_emails = ", ".join(emails_split(feed.alert_emails))
    try:
        feed.full_clean(validate_unique=False)
    except ValidationError as exc:
        key, messages = next(iter(exc.message_dict.items()))
        key = "name" if key == "__all__" else key
        raise FeedFileError(f"{where}: {key}: {' '.join(messages)}") from None
    return feed, before != {key: getattr(feed, key) for key in values}


def feeds_load(text: str, *, prune: bool = False) -> LoadResult:
    """Create or update the feeds of a TOML text's [[feed]] tables by name, all or nothing
    (one transaction); with prune delete the feeds the text does not name. FeedFileError
    for a bad file, before anything is written."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FeedFileError(f"not valid TOML: {exc}") from None
    if set(data) - {"feed"} or not isinstance(data.get("feed", []), list):
        raise FeedFileError("expected only [[feed]] tables")
    existing = {feed.name: feed for feed in Feed.objects.all()}
    result, feeds, seen = LoadResult(), [], set()
    for number, table in enumerate(data.get("feed", []), start=1):
        feed, changed = _feed_from(table, number, existing)
        if feed.name in seen:
            raise FeedFileError(f"feed {feed.name!r}: name: given twice")
        seen.add(feed.name)
        if feed.pk is None:
            result.created.append(feed.name)
        elif changed:
            result.updated.append(feed.name)
        else:
            result.unchanged.append(feed.name)
            continue
        feeds.append(feed)
    if feeds or (prune and set(existing) - seen):
        result.deleted = feeds_save_atomic(feeds, seen if prune else None)
    return result


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_mapping(text: str) -> str:
    """A stored mapping as a multi-line literal string when it can be one, as read."""
    plain = all(c in "\n\t" or 0x20 <= ord(c) != 0x7F for c in text)
    if plain and "'''" not in text and not text.endswith("'"):
        return "'''\n" + text + "'''"
    return _toml_string(text)


def _toml_value(key: str, value) -> str | None:
    """The TOML of one field, or None when it has its default (left out of a dump)."""
    if value in (None, "") or (key in FLAGS and not value):
        return None
    if key == "enabled":
        return None if value else "false"
    if isinstance(value, bool):
        return "true"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, timedelta):
        return _toml_string(duration_text(value))
    if key == "alert_emails":
        return "[" + ", ".join(_toml_string(a) for a in emails_split(value)) + "]"
    if key == "mapping":
        return _toml_mapping(value)
    return _toml_string(value)


def feeds_dump() -> str:
    """Every feed as a [[feed]] table, fields with their default left out (and the state:
    push token, incident); feeds_load of the text changes nothing."""
    tables = []
    for feed in Feed.objects.order_by("name"):
        lines = ["[[feed]]"]
        for key in FIELDS:
            shown = _toml_value(key, getattr(feed, key))
            if shown is not None:
                lines.append(f"{key} = {shown}")
        tables.append("\n".join(lines) + "\n")
    return "\n".join(tables)
