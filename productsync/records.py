"""Typed feed records, their validation, and the outcome of each item and batch."""

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from django.conf import settings
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from productsync.exceptions import RecordError


def _storable(text: str) -> str:
    """Refuse text no database can store: PostgreSQL rejects NUL, UTF-8 has no lone surrogates."""
    if "\x00" in text:
        raise ValueError("contains a NUL character (\\x00), which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains an unpaired surrogate, which is not valid Unicode") from None
    return text


def _not_bool(value: Any) -> Any:
    """JSON true/false are not counts; lax mode would take them as 1/0."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    return value


# Category depth is bounded by treebeard's path: 255 characters, 4 per level.
MAX_CATEGORY_DEPTH = 63


def _breadcrumb(text: str) -> str:
    names = [name.strip() for name in text.split(">")]
    if not all(names):
        raise ValueError("has an empty category name between '>' separators")
    if any(len(name) > 255 for name in names):
        raise ValueError("has a category name longer than 255 characters")
    if len(names) > MAX_CATEGORY_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_CATEGORY_DEPTH} categories")
    return text


Text = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_storable)]


class StockRecordIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    partner: Annotated[Text, StringConstraints(min_length=1, max_length=128)]
    partner_sku: Annotated[Text, StringConstraints(min_length=1, max_length=128)]
    price: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = None
    currency: Annotated[Text, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    num_in_stock: (
        Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=2_147_483_647)] | None
    ) = None


class ProductRecord(BaseModel):
    """One product of a feed, validated."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    upc: Annotated[Text, StringConstraints(min_length=1, max_length=64)]
    title: Annotated[Text, StringConstraints(min_length=1, max_length=255)]
    product_class: Annotated[Text, StringConstraints(min_length=1, max_length=128)]
    description: Annotated[str, AfterValidator(_storable)] = ""
    categories: Annotated[
        list[
            Annotated[
                Text, StringConstraints(min_length=1, max_length=1024), AfterValidator(_breadcrumb)
            ]
        ],
        Field(max_length=100),
    ] = []
    is_public: bool = True
    stockrecords: Annotated[list[StockRecordIn], Field(max_length=100)] = []


KNOWN_KEYS = frozenset(ProductRecord.model_fields)


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True, slots=True)
class Unparsed:
    """An item a reader could not decode (a bad JSON line, a ragged CSV row): kept as text."""

    text: str
    message: str


JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "true/false"}


def printable(text: str) -> str:
    """Text made safe to show and store on one line: control characters, NUL and unpaired
    surrogates become escapes, so feed text cannot drive a terminal or break a database."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def record_parse(payload: Any) -> ProductRecord:
    """Validate one raw feed item; raise RecordError naming the first bad field."""
    if isinstance(payload, Unparsed):
        raise RecordError(payload.message)
    if not isinstance(payload, dict):
        kind = "null" if payload is None else JSON_TYPES.get(type(payload), "a number")
        raise RecordError(f"item must be an object, not {kind}")
    try:
        record = ProductRecord.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = _location(first["loc"])
        raise RecordError(f"{where}: {first['msg']}", field=where) from None
    skus = set()
    for sr in record.stockrecords:
        if (sr.partner, sr.partner_sku) in skus:
            raise RecordError(
                f"stockrecords: partner_sku {sr.partner_sku!r} of {sr.partner!r} appears twice",
                field="stockrecords",
            )
        skus.add((sr.partner, sr.partner_sku))
    return record


def record_fingerprint(record: ProductRecord) -> str:
    """A digest of everything the sync writes for this record; equal digest, no writes."""
    return hashlib.blake2b(record.model_dump_json().encode(), digest_size=16).hexdigest()


def default_currency() -> str:
    return getattr(settings, "OSCAR_DEFAULT_CURRENCY", "GBP")


def payload_dump(payload: Any) -> str:
    """The raw payload as JSON text, kept with a failure so it can be fixed and resubmitted.
    Text that is not JSON keeps NUL as the escape \\x00 (databases cannot store NUL); JSON
    escapes unpaired surrogates so the text stays storable UTF-8."""
    if isinstance(payload, Unparsed):
        return payload.text.replace("\x00", "\\x00")
    text = json.dumps(payload, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(payload, default=str)
    return text


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One raw item as the reader found it; position is 0-based in the feed."""

    position: int
    payload: Any


@dataclass(frozen=True, slots=True)
class ValidItem:
    position: int
    record: ProductRecord
    fingerprint: str
    # The item as read, for the failure record if the writer refuses it.
    payload: Any = None

    def raw(self) -> str:
        return payload_dump(
            self.record.model_dump(mode="json") if self.payload is None else self.payload
        )


@dataclass(slots=True)
class ItemFailure:
    position: int
    upc: str
    message: str
    raw_payload: str
    field: str = ""


@dataclass
class BatchResult:
    """Counts and failures of one batch, recorded by the service."""

    number: int
    first_position: int
    last_position: int
    items: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    product_ids: list[int] = field(default_factory=list)
    unknown_keys: set[str] = field(default_factory=set)
    warnings: int = 0
    duration: float = 0.0
    error: str = ""

    @property
    def failed(self) -> int:
        return len(self.failures)

    def merge(self, other: "BatchResult") -> None:
        """Add the outcomes of a part of this batch (one item retried on its own)."""
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failures.extend(other.failures)
        self.product_ids.extend(other.product_ids)

    @property
    def status(self) -> str:
        if not self.failures:
            return "succeeded"
        return "failed" if len(self.failures) == self.items else "partial"
