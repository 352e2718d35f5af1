"""A batch's items sorted by what writing them takes: new, changed, unchanged, or failed for a
conflict with an earlier item or another product."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from oscar.core.loading import get_model

from productsync.outcomes import ValidItem
from productsync.ownership import carried
from productsync.writer.catalogue import Keyed, ProductState, product_upc, products_by_key
from productsync.writer.drift import unit_digests
from productsync.writer.item_rows import taken_in_dry_run
from productsync.writer.product_rows import upc_changes

Product = get_model("catalogue", "Product")


class Known(NamedTuple):
    """What the catalogue holds of a batch's products, read before they are written."""

    # By key: every product the items name that exists, and each holding a UPC they give.
    existing: Keyed
    same: set[int]  # the units whose stored fingerprint is their item's
    drifted: set[int]  # of those, the ones a product of which someone changed since
    taken: dict[str, int]  # a dry run's: {upc: position} its earlier batches recorded
    # Comparing by value (--compare): the same units' products' digests before the write;
    # each same unit is written again, and had drifted if the write changed a digest.
    digests: dict[int, list] | None = None

    def suspect(self) -> set[int]:
        """The same units written again: the drifted ones, or all when comparing."""
        return self.drifted if self.digests is None else self.same


def edits_read(items, existing: dict[str, ProductState]) -> dict[int, int]:
    """{product id: edits} of the items' existing products that someone changed since the
    sync wrote them (writer.capture)."""
    return {
        row.id: row.edits
        for item in items
        for _, member in item.record.members()
        if (row := existing.get(member.upc)) is not None and row.edits
    }


def known_read(
    items: list[ValidItem], looked_up, run_id: int, dry_run: bool, compare: bool = False
) -> Known:
    """Read what the catalogue holds of the items' products, reusing what unchanged_skip
    read in this transaction (looked_up) when it covers them. compare: each unit the last
    sync wrote as its item says is written again and compared by value (a --compare run)."""
    upcs = {member.upc for item in items for _, member in item.record.members()}
    upcs |= {m.barcode for item in items for _, m in item.record.members() if m.barcode}
    if looked_up is not None and upcs <= looked_up.upcs:
        existing = looked_up.existing
    else:
        existing = products_by_key(upcs)
    # Items the last sync wrote as they are: unchanged, unless someone changed a product of
    # theirs since (capture counted an edit): then written again, repaired.
    same, drifted = set(), set()
    for item in items:
        row = existing.get(item.record.upc)
        if row is not None and row.fingerprint == item.fingerprint:
            same.add(row.id)
            if edits_read([item], existing):
                drifted.add(row.id)
    digests = unit_digests(same) if compare else None
    taken = taken_in_dry_run(run_id, upcs) if dry_run else {}
    return Known(existing, same, drifted, taken, digests)


@dataclass
class Sorted:
    """The items to write: new ones, and changed and unchanged ones with their product id."""

    new: list[ValidItem] = field(default_factory=list)
    changed: list[tuple[ValidItem, int]] = field(default_factory=list)
    unchanged: list[tuple[ValidItem, int]] = field(default_factory=list)
    # Existing products a run that creates only leaves as they are: counted unchanged, their
    # sync state kept (the next full run still updates them).
    untouched: list[tuple[ValidItem, int]] = field(default_factory=list)

    def written(self) -> list[ValidItem]:
        """The items whose products are written (the new and changed ones)."""
        return self.new + [item for item, _ in self.changed]

    def keep(self, positions: set[int]) -> None:
        """Drop the new and changed items not at these positions (they failed)."""
        self.new = [item for item in self.new if item.position in positions]
        self.changed = [(item, pid) for item, pid in self.changed if item.position in positions]


def items_sort(
    items: list[ValidItem],
    known: Known,
    run_id: int,
    claim: Callable[[ValidItem], bool],
    fail: Callable,
    only: str = "",
) -> Sorted:
    """Sort the items in feed order, as if one item were written at a time: an item that
    fails does not claim its UPC or SKUs, so the outcome does not depend on where batches
    split. claim: sku_claims's check of the item's SKUs. only "create": the item of an existing
    product that changed is left untouched (counted unchanged); "update": an item naming a
    product (or child) that does not exist fails."""
    out = Sorted()
    accepted: dict[str, int] = {}
    # By UPC: the product that holds it, or the accepted item whose product will.
    holders: dict = dict(known.existing.holders)
    suspect = known.suspect()
    for item in items:
        problem = (
            _structure_conflict(item, known.existing)
            or _only_conflict(item, known, only)
            or _upc_taken(item, known.existing, holders)
        )
        row = known.existing.get(item.record.upc)
        seen = _seen(item, accepted, known, run_id)
        if seen is not None:
            fail(item, *seen)
        elif problem:
            fail(item, *problem)
        elif row is not None and _unit_unchanged(item, known.existing, suspect):
            out.unchanged.append((item, row.id))
        elif not claim(item):
            continue
        elif row is None:
            out.new.append(item)
            _upcs_move(item, known.existing, holders)
        elif only == "create":
            out.untouched.append((item, row.id))
        else:
            out.changed.append((item, row.id))
            _upcs_move(item, known.existing, holders)
        if seen is None and problem is None:
            accepted.update((m.upc, item.position) for _, m in item.record.members())
    return out


def _upcs_move(item: ValidItem, existing: dict, holders: dict) -> None:
    """The unit will be written: the UPCs its barcodes replace are free for later items of
    the batch (the writer clears them first), the ones it writes are its own."""
    for _, member in item.record.members():
        own = existing.get(member.upc)
        held = own is not None and getattr(holders.get(own.upc), "id", None) == own.id
        if held and upc_changes(member, own):
            del holders[own.upc]
    holders.update((upc, item) for upc in _upcs_written(item, existing).values())


def _upcs_written(item: ValidItem, existing: dict) -> dict[str, str]:
    """{field prefix: UPC} of the products of the unit whose UPC the write sets: a new one's,
    and another UPC an item's barcode gives."""
    return {
        prefix: upc
        for prefix, member in item.record.members()
        if (member.upc not in existing or upc_changes(member, existing[member.upc]))
        and (upc := product_upc(member))
    }


def _upc_taken(item: ValidItem, existing: dict, holders: dict) -> tuple[str, str] | None:
    """(field, message) when a UPC the unit would write is another product's (holders: the
    products holding the UPCs the batch gives, and the earlier items that write them)."""
    members, unit = dict(item.record.members()), {}
    for prefix, upc in _upcs_written(item, existing).items():
        holder, own = holders.get(upc), existing.get(members[prefix].upc)
        field = f"{prefix}barcode" if members[prefix].barcode else f"{prefix}upc"
        if upc in unit:
            return field, f"{field}: {upc!r} is also the UPC of {unit[upc] or 'the parent'}"
        unit[upc] = prefix.rstrip(".")
        if holder is None or (own is not None and getattr(holder, "id", None) == own.id):
            continue
        if isinstance(holder, ProductState):
            whose = f"product {holder.key!r}"
        else:
            whose = f"the item at position {holder.position}"
        return field, f"{field}: {upc!r} is already the UPC of {whose}"
    return None


def _seen(item: ValidItem, accepted: dict, known: Known, run_id: int):
    """(field, message, position of the earlier item) when a upc of the unit was taken by
    an earlier item of the batch, or written (in a dry run: recorded, taken) earlier in this
    run by an item of an earlier batch."""
    for prefix, member in item.record.members():
        seen = accepted.get(member.upc, known.taken.get(member.upc))
        row = known.existing.get(member.upc)
        if seen is None and row and row.last_run_id == run_id:
            seen = row.last_position
        seen = None if seen == item.position else seen
        if seen is not None:
            message = f"{prefix}upc: duplicate of the item at position {seen}"
            return f"{prefix}upc", message, seen
    return None


def _only_conflict(item: ValidItem, known: Known, only: str) -> tuple[str, str] | None:
    """(field, message) when a run that updates only meets a product that does not exist."""
    if only != "update":
        return None
    for prefix, member in item.record.members():
        if member.upc not in known.existing:
            return f"{prefix}upc", (
                f"{prefix}upc: no product with upc {member.upc!r}; this run updates existing "
                "products only"
            )
    return None


def _structure_conflict(item: ValidItem, existing: dict) -> tuple[str, str] | None:
    """(field, message) when an upc of the unit is taken by a product of another role: a
    product synced as a child elsewhere, or a child that belongs to another parent."""
    for prefix, member in item.record.members():
        row = existing.get(member.upc)
        if row is None:
            continue
        is_child = row.structure == Product.CHILD
        if not prefix and is_child:
            return "upc", (
                f"upc: {member.upc!r} is a child of product {row.parent_key!r}; it "
                "cannot become a product of its own"
            )
        # Its children left out, a parent stays one, and a parent has no stock records.
        stays_parent = row.structure == Product.PARENT and not carried(member, "children")
        if not prefix and stays_parent and member.stockrecords:
            return "stockrecords", (
                f"stockrecords: {member.upc!r} is a parent product and the item leaves "
                "its children as they are; give the stock records to its children"
            )
        if prefix and not (is_child and row.parent_key == item.record.upc):
            owner = f"a child of {row.parent_key!r}" if is_child else "a product"
            return f"{prefix}upc", (
                f"{prefix}upc: {member.upc!r} is already {owner}, not a child of "
                f"{item.record.upc!r}"
            )
    return None


def _unit_unchanged(item: ValidItem, existing: dict, suspect: set[int]) -> bool:
    """Same fingerprint, every product of the unit present and not suspect of drift."""
    row = existing[item.record.upc]
    if row.fingerprint != item.fingerprint or row.id in suspect:
        return False
    return all(member.upc in existing for _, member in item.record.members())
