"""Updates of the products a batch writes: the fields their items carry and nothing else."""

from oscar.core.loading import get_model

from productsync.ownership import carried
from productsync.sql import update_rows
from productsync.writer.catalogue import product_upc
from productsync.writer.sanitise import html_clean

Product = get_model("catalogue", "Product")


def product_changes(member, class_id, now, row, parent_id: int | None = None) -> dict:
    """The columns (by attname) an update writes to a product (row: its ProductState): the
    fields its item carries, its place in its unit and the time. class_id gives a class's
    id by name; parent_id: a child's parent (a child has no class of its own: Oscar's
    rule). A product the sync hid (it left the feed) comes back public unless told not."""
    values = {}
    if upc_changes(member, row):
        values["upc"] = product_upc(member)
    if carried(member, "title"):
        values["title"] = member.title
    if carried(member, "description"):
        values["description"] = html_clean(member.description)
    if parent_id is not None:
        values.update(product_class_id=None, structure=Product.CHILD)
    else:
        if carried(member, "product_class"):
            values["product_class_id"] = class_id(member.product_class)
        if carried(member, "children"):
            values["structure"] = Product.PARENT if member.children else Product.STANDALONE
    if carried(member, "is_public") or row.fingerprint == "":
        values["is_public"] = member.is_public
    values.update(parent_id=parent_id, date_updated=now)
    return values


def upc_changes(member, row) -> bool:
    """Whether the item gives its product (row: its ProductState) another UPC."""
    return carried(member, "barcode") and product_upc(member) != (row.upc or None)


def upcs_release(changed, existing: dict) -> None:
    """Clear the UPCs the changed units' barcodes replace before any product is written: one
    may move to another product of the batch (Oscar's UPCs are unique; writer.triage lets
    it, in feed order)."""
    ids = [
        row.id
        for item, _ in changed
        for _, member in item.record.members()
        if (row := existing.get(member.upc)) is not None and row.upc and upc_changes(member, row)
    ]
    if ids:
        Product.objects.filter(pk__in=ids).update(upc=None)


def products_update(updates: list[tuple[int, dict]]) -> None:
    """Write the updates (product id, product_changes): one statement per set of columns."""
    groups: dict[tuple[str, ...], list[tuple]] = {}
    for product_id, values in updates:
        groups.setdefault(tuple(values), []).append((product_id, *values.values()))
    for columns, rows in groups.items():
        update_rows(Product, list(columns), rows)
