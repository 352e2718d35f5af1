"""The mass-change guard: a run whose first items would clear, zero or change one field of
most of the existing products they match stops, failed, before it writes anything."""

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import DatabaseError, transaction

from productsync.batching import batched
from productsync.conf import app_settings
from productsync.exceptions import FeedError
from productsync.models import SyncRun
from productsync.outcomes import BatchResult, FeedItem, ItemOutcome
from productsync.services.mode import RunMode
from productsync.writer import products_by_key

# The guard judges the first batch or the first this many items, whichever is larger...
GUARD_ITEMS = 1000
# ...holding no more than the first batch once its items add up to this many bytes.
GUARD_BYTES = 16 * 1024 * 1024
# Fewer matched products than this are not judged: one product renamed is 100% of one.
GUARD_MIN_MATCHED = 10
# The fields judged, as the writer's change diffs name them (productsync.changes), and
# whether any change counts or only clearing and zeroing: a stock level moves with every
# delivery and order, so only one that would be emptied or zeroed counts.
JUDGED = {
    # A UPC cleared (a barcode column lost, or given empty): only clearing counts.
    "barcode": False,
    "title": True,
    "description": True,
    "product_class": True,
    "is_public": True,
    "price": True,
    "num_in_stock": False,
    # Lists: a product's categories or attribute values all removed (given empty).
    "categories": False,
    "attributes": False,
}
# A change's field without its stock record or child: "children[U].stockrecords[P/S].price".
PREFIX = re.compile(r"^(?:children\[[^\]]*\]\.)?(?:stockrecords\[[^\]]*\]\.)?")


@dataclass
class FieldChanges:
    """The matched products whose value of one field the items would change, by upc (a stock
    row's by its SKU)."""

    products: dict[str, str] = field(default_factory=dict)  # upc: how (cleared, zeroed...)
    example: str = ""

    def add(self, upc: str, old, new) -> None:
        if upc not in self.products:
            self.products[upc] = change_kind(new)
        if not self.example:
            shown = "empty" if change_kind(new) == "cleared" else new
            was = "empty" if change_kind(old) == "cleared" else old
            self.example = f"{upc} {was} -> {shown}"

    def verb(self) -> str:
        kinds = set(self.products.values())
        if kinds <= {"cleared", "zeroed"}:
            return " or ".join(sorted(kinds))
        return "changed"


def judged_field(name: str) -> str:
    """The judged field of a change's name: a child's or stock record's value as its own
    field ("price"), any attribute's value as "attributes"."""
    field = PREFIX.sub("", name)
    return "attributes" if field.startswith("attributes.") else field


def change_kind(new) -> str:
    """How a change sets a field: cleared (empty), zeroed, or changed (a flag too)."""
    if new in (None, "", [], {}):
        return "cleared"
    return "zeroed" if new == 0 and not isinstance(new, bool) else "changed"


def guard_judge(
    run: SyncRun, mode: RunMode, items: Iterable[FeedItem]
) -> tuple[Iterator[FeedItem], str]:
    """Read the first batch or GUARD_ITEMS items (whichever is more; beyond the batch, while
    they hold less than GUARD_BYTES) ahead, write them in a transaction rolled back to see
    what they would change, and judge: the items to sync (the window read again first, then
    the rest), and why the run must stop, or ''. Nothing to judge when the mode allows a mass
    change or the items match no existing product. Stock files and partial feeds are judged
    alike: a supplier's file of zeros is stopped as an empty price column is."""
    items = iter(items)
    if mode.allow_mass_change:
        return items, ""
    window, items = _read_ahead(items, run.batch_size)
    outcomes, matched = _window_outcomes(run, mode, window)
    return itertools.chain(window, items), mass_change_message(outcomes, matched)


def _read_ahead(items: Iterator[FeedItem], batch_size: int) -> tuple[list, Iterator[FeedItem]]:
    """The window's items, and the rest; a feed that breaks meanwhile breaks again where the
    run's loop reads it, after the items read before the break."""
    window: list[FeedItem] = []
    try:
        window.extend(itertools.islice(items, batch_size))
        held = sum(map(_size, window))
        while len(window) < GUARD_ITEMS and held < GUARD_BYTES:
            item = next(items, None)
            if item is None:
                break
            window.append(item)
            held += _size(item)
    except FeedError as exc:
        return window, _raise_when_read(exc)
    return window, items


def _size(item: FeedItem) -> int:
    """About the bytes an item holds: as read, or its payload's text."""
    return len(item.raw) if item.raw is not None else len(repr(item.payload))


def _raise_when_read(exc: FeedError) -> Iterator[FeedItem]:
    raise exc
    yield  # a generator: it raises when read, not when made


def _window_outcomes(
    run: SyncRun, mode: RunMode, window: list[FeedItem]
) -> tuple[list[ItemOutcome], int]:
    """The window's updated items with their changes, and how many of its items match an
    existing product (updated, repaired or unchanged), as writing it would find; rolled back.
    Unchanged items are skipped as a run skips them. A batch the database rejects is not
    judged: its real write fails it as usual."""
    writer = mode.writer(run)
    writer.changes = True
    outcomes: list[ItemOutcome] = []
    matched = 0
    for number, chunk in enumerate(batched(window, run.batch_size), start=1):
        result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
        try:
            with transaction.atomic():
                valid, looked_up = mode.items(writer, chunk, result, True)
                if valid and (mode.partial or products_by_key({i.record.upc for i in valid})):
                    writer.write(valid, result, looked_up=looked_up)  # else nothing to judge
                transaction.set_rollback(True)
        except DatabaseError:
            continue
        finally:
            writer.forget()
        outcomes += result.outcomes
        matched += result.updated + result.repaired + result.unchanged
    return outcomes, matched


def mass_change_message(outcomes: list[ItemOutcome], matched: int) -> str:
    """Why these outcomes of updated items are a mass change the run must not make, or '': a
    judged field they would clear, zero or change for more than
    PRODUCTSYNC['MASS_CHANGE_MAX_FRACTION'] of the matched existing products (at least
    GUARD_MIN_MATCHED of them)."""
    if matched < GUARD_MIN_MATCHED:
        return ""
    changes = {name: FieldChanges() for name in JUDGED}
    for outcome in outcomes:
        key = outcome.upc or " ".join(outcome.codes) or f"item {outcome.position}"  # stock rows
        for name, old, new in outcome.changes or ():
            field_name = judged_field(name)
            judged = changes.get(field_name)
            if judged is None or old == new:
                continue
            if JUDGED[field_name] or change_kind(new) != "changed":
                judged.add(key, old, new)
    limit = app_settings.MASS_CHANGE_MAX_FRACTION * matched
    over = [
        f"{name}: {len(c.products)} of {matched} matched products would be {c.verb()}, "
        f"e.g. {c.example}"
        for name, c in changes.items()
        if len(c.products) > limit
    ]
    if not over:
        return ""
    return (
        f"mass change stopped before anything was written: {'; '.join(over)} (more than "
        f"{app_settings.MASS_CHANGE_MAX_FRACTION:.0%} of them; a run that allows a mass change "
        "lets it through)"
    )
