"""Outcomes as data: an item as read, an item validated, an item failed, a batch's counts."""

from dataclasses import dataclass, field
from typing import Any

from productsync.records import ProductRecord, payload_dump


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One raw item as the reader found it; position is 0-based in the feed. raw: the item's
    bytes in the feed, when the reader cut them out (a JSON array's element, a JSON line)."""

    position: int
    payload: Any
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class ValidItem:
    position: int
    record: ProductRecord
    fingerprint: str
    # The item as read, for the failure record if the writer refuses it.
    payload: Any = None
    raw_fingerprint: str = ""

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
    # The position of the earlier item of the feed with the same upc, when that is the reason.
    duplicate_of: int | None = None


@dataclass(slots=True)
class ItemOutcome:
    """What the writer did (or, in a dry run, would do) with one item; changes: [field, old,
    new] of an updated item (the facts of a created one), when asked for; title and codes
    (its SKUs, its children's UPCs and SKUs) for the preview's search."""

    position: int
    upc: str
    outcome: str
    changes: list | None = None
    title: str = ""
    codes: tuple[str, ...] = ()


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
    repaired: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    product_ids: list[int] = field(default_factory=list)
    hidden: int = 0
    # (product id, upc, image references) of the written or unchanged items with images.
    images: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unknown_keys: set[str] = field(default_factory=set)
    outcomes: list[ItemOutcome] = field(default_factory=list)
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
        self.repaired += other.repaired
        self.failures.extend(other.failures)
        self.product_ids.extend(other.product_ids)
        self.hidden += other.hidden
        self.images.extend(other.images)
        self.outcomes.extend(other.outcomes)

    @property
    def status(self) -> str:
        if not self.failures:
            return "succeeded"
        return "failed" if len(self.failures) == self.items else "partial"
