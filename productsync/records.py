"""Typed feed records, their validation, and the outcome of each item and batch."""

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from productsync.exceptions import RecordError

Text = Annotated[str, StringConstraints(strip_whitespace=True)]


class StockRecordIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, cache_strings="keys")

    partner: Annotated[Text, StringConstraints(min_length=1, max_length=128)]
    partner_sku: Annotated[Text, StringConstraints(min_length=1, max_length=128)]
    price: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = None
    currency: Annotated[Text, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    num_in_stock: Annotated[int, Field(ge=0, le=2_147_483_647)] | None = None


class ProductRecord(BaseModel):
    """One product of a feed, validated."""

    model_config = ConfigDict(extra="ignore", frozen=True, cache_strings="keys")

    upc: Annotated[Text, StringConstraints(min_length=1, max_length=64)]
    title: Annotated[Text, StringConstraints(min_length=1, max_length=255)]
    product_class: Annotated[Text, StringConstraints(min_length=1, max_length=128)]
    description: str = ""
    categories: list[Annotated[Text, StringConstraints(min_length=1, max_length=1024)]] = []
    is_public: bool = True
    stockrecords: list[StockRecordIn] = []


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


def record_parse(payload: Any) -> ProductRecord:
    """Validate one raw feed item; raise RecordError naming the first bad field."""
    if isinstance(payload, Unparsed):
        raise RecordError(payload.message)
    if not isinstance(payload, dict):
        raise RecordError(f"item must be an object, not {type(payload).__name__}")
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
    """The raw payload as JSON text, kept with a failure so it can be fixed and resubmitted."""
    if isinstance(payload, Unparsed):
        return payload.text
    return json.dumps(payload, ensure_ascii=False, default=str)


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
