"""What each item of a batch did, for the run's item rows: outcomes, and the changed fields of
updated items read from the catalogue before and after the batch wrote them."""

from oscar.core.loading import get_model

from productsync.changes import created_facts, item_changes
from productsync.models import SyncItem
from productsync.outcomes import BatchResult, ItemOutcome
from productsync.writer.categories import CategoryTree
from productsync.writer.snapshot import breadcrumb, product_snapshots
from productsync.writer.stock import price_text

Category = get_model("catalogue", "Category")
Outcome = SyncItem.Outcome


def taken_in_dry_run(run_id: int, upcs: set[str]) -> dict[str, int]:
    """{upc: position} of these upcs that earlier batches of this dry run recorded as written
    (its rolled-back sync state cannot tell)."""
    return dict(
        SyncItem.objects.filter(run_id=run_id, upc__in=upcs)
        .exclude(outcome=Outcome.FAILED)
        .values_list("upc", "position")
    )


def snapshots_before(changed, tree: CategoryTree) -> dict[int, dict]:
    """The updated products as the catalogue holds them before the batch writes them."""
    return product_snapshots((pid for _, pid in changed), tree.names)


def _snapshots_after(changed, tree: CategoryTree) -> dict[int, dict]:
    written = None
    if not Category.node_order_by:  # a sorted fork's nodes have no planned path
        # The categories just written are the items' own: no need to read them back.
        written = {
            pid: [
                breadcrumb(path, tree.names)
                for path in dict.fromkeys(
                    tree.by_breadcrumb[b].path for b in item.record.categories
                )
            ]
            for item, pid in changed
        }
    return product_snapshots((pid for _, pid in changed), tree.names, written)


def _codes(record) -> tuple[str, ...]:
    """The SKUs and barcodes of the record, its children's keys, barcodes and SKUs: what a
    preview finds it by."""
    return (
        *(sr.partner_sku for sr in record.stockrecords),
        *((record.barcode,) if record.barcode else ()),
        *(
            code
            for c in record.children
            for code in (c.upc, c.barcode, *(sr.partner_sku for sr in c.stockrecords))
            if code
        ),
    )


def _as_written(record) -> dict:
    """What created_facts reads of a new product, from its record, as writer.snapshot reads
    the product back (a preview spares reading back what it has just inserted)."""

    def member(m) -> dict:
        return {
            "title": m.title,
            "stockrecords": [
                {
                    "partner": sr.partner,
                    "partner_sku": sr.partner_sku,
                    "price": price_text(sr.price),
                    "num_in_stock": sr.num_in_stock,
                }
                for sr in m.stockrecords
            ],
        }

    children = [{"upc": c.upc, **member(c)} for c in record.children]
    return {**member(record), "product_class": record.product_class, "children": children}


def _outcome(item, outcome: str, changes: list | None = None) -> ItemOutcome:
    record = item.record
    return ItemOutcome(item.position, record.upc, outcome, changes, record.title, _codes(record))


def outcomes_add(
    result: BatchResult,
    created,
    changed,
    unchanged,
    *,
    every: bool,
    before: dict[int, dict] | None,
    tree: CategoryTree,
) -> None:
    """Add to result the updated items (with their changed fields when before was read) and,
    when every, the created and unchanged ones (the created with their facts when before was
    read) and the children's upcs (a dry run's)."""
    after = _snapshots_after(changed, tree) if before is not None else {}
    rows = [
        _outcome(
            item,
            Outcome.UPDATED,
            item_changes(before[pid], after[pid]) if before is not None else None,
        )
        for item, pid in changed
    ]
    if every:
        facts = before is not None
        rows += [
            _outcome(
                item, Outcome.CREATED, created_facts(_as_written(item.record)) if facts else None
            )
            for item in created
        ]
        rows += [_outcome(item, Outcome.UNCHANGED) for item, _ in unchanged]
        rows += [
            ItemOutcome(item.position, child.upc, Outcome.MEMBER)
            for item in [*created, *(i for i, _ in changed), *(i for i, _ in unchanged)]
            for child in item.record.children
        ]
    if every or before is not None:
        result.outcomes.extend(rows)
