"""Upserts one batch of validated items into Oscar's catalogue with bulk queries."""

import contextlib
from collections.abc import Iterable
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from oscar.core.loading import get_model

from productsync.exceptions import RecordError
from productsync.models import SyncedProduct
from productsync.outcomes import BatchResult, ItemFailure, ValidItem
from productsync.ownership import carried
from productsync.records import ClassOptions, ProductRecord
from productsync.sql import delete_quietly, insert_rows, sqlite_variable_limit_lift
from productsync.writer.attributes import Attributes, attributes_clear
from productsync.writer.capture import edits_settle, sync_writes
from productsync.writer.catalogue import product_slug, product_upc, products_insert
from productsync.writer.categories import CategoryTree
from productsync.writer.drift import unit_digests
from productsync.writer.item_rows import outcomes_add, snapshots_before
from productsync.writer.product_rows import product_changes, products_update, upcs_release
from productsync.writer.sanitise import html_clean
from productsync.writer.search import search_index_update
from productsync.writer.stock import (
    StockLevels,
    sku_claims,
    stock_levels_fed,
    stockrecords_write,
)
from productsync.writer.triage import Known, Sorted, edits_read, items_sort, known_read

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductCategory = get_model("catalogue", "ProductCategory")
Partner = get_model("partner", "Partner")


class BatchWriter:
    """Writes batches for one run; caches classes, categories and partners across batches."""

    def __init__(self, run_id: int, source: str, default_currency: str) -> None:
        self.run_id = run_id
        self.source = source
        self.default_currency = default_currency
        self._classes: dict[str, int] = {}
        # Whether each class tracks stock, and the classes an item of the run did not track.
        self._tracking: dict[str, bool] = {}
        self._untracked: set[str] = set()
        self._categories: CategoryTree | None = None  # read when first needed
        self._partners: dict[str, int] = {}
        self._attributes = Attributes()
        # outcomes: record every item's outcome (dry runs); changes: the changed fields of
        # updated items. The run's services set them before each batch.
        self.outcomes = False
        self.changes = False
        # The feed's stock levels are written whenever its items are (see StockLevels).
        self.stock_authoritative = False
        # Which items it writes: all (""), new products only ("create"), existing ("update").
        self.only = ""
        # Compare every product with its item by value (--compare), not only the edited.
        self.compare = False
        sqlite_variable_limit_lift()

    def forget(self) -> None:
        """Drop the caches: a rollback may have undone rows they point at."""
        self._classes.clear()
        self._categories = None
        self._partners.clear()
        self._attributes.forget()

    # Lookups of the few shared rows, created on first sight and cached for the run.

    def _class_id(self, name: str, options: ClassOptions | None = None) -> int:
        """The class of that name, created on first sight; with an item's options, created
        with them or changed to them (once per run). Stock tracking is only ever turned off:
        an item that does not track stock turns its class's tracking off, whichever item came
        first and in whichever process (a product type with untracked products does not
        track stock: Oscar tracks it per class); the dashboard turns it back on."""
        wanted = options.model_dump(exclude_none=True) if options is not None else {}
        if wanted.get("track_stock") is False:
            self._untracked.add(name)
        if name in self._untracked:
            wanted["track_stock"] = False
        if name not in self._classes:
            pc = ProductClass.objects.filter(name=name).order_by("pk").first()
            if pc is not None and not pc.track_stock:
                wanted.pop("track_stock", None)
            if pc is None:
                pc = ProductClass.objects.create(name=name, **wanted)
            elif any(getattr(pc, key) != value for key, value in wanted.items()):
                ProductClass.objects.filter(pk=pc.pk).update(**wanted)
            self._classes[name] = pc.pk
            self._tracking[name] = wanted.get("track_stock", pc.track_stock)
        elif name in self._untracked and self._tracking[name]:
            ProductClass.objects.filter(pk=self._classes[name]).update(track_stock=False)
            self._tracking[name] = False
        return self._classes[name]

    def _category_tree(self) -> CategoryTree:
        if self._categories is None:
            self._categories = CategoryTree()
        return self._categories

    def _resolve_categories(self, items: list[ValidItem], fail) -> list[ValidItem]:
        """Find the categories the items name, creating the missing ones in one insert; fail
        the items that name an ambiguous one. Return the others."""
        tree, passed = self._category_tree(), []
        for item in items:
            try:
                for path in item.record.categories:
                    tree.node(path)
            except RecordError as exc:
                fail(item, exc.field, str(exc))
                continue
            passed.append(item)
        tree.create()
        return passed

    def _partner_id(self, name: str) -> int:
        if name not in self._partners:
            partner = Partner.objects.filter(name=name).order_by("pk").first()
            self._partners[name] = (partner or Partner.objects.create(name=name)).pk
        return self._partners[name]

    def prepare(self, records: Iterable[ProductRecord]) -> None:
        """Create the classes, categories and partners the records name, so batches written
        side by side by several processes find them instead of racing to create them. When
        another process added categories meanwhile (a planned tree path is taken), the tree
        is read again and the records prepared once more."""
        records = list(records)
        try:
            with transaction.atomic():
                self._prepare(records)
        except IntegrityError:
            self.forget()
            with transaction.atomic():
                self._prepare(records)

    def _prepare(self, records: list[ProductRecord]) -> None:
        tree = self._category_tree()
        for record in records:
            self._class_id(record.product_class, record.class_options)
            for path in record.categories:
                with contextlib.suppress(RecordError):  # the batch's writer fails the item
                    tree.node(path)
            for sr in record.stockrecords:
                self._partner_id(sr.partner)
        tree.create()

    def write(self, items: Iterable[ValidItem], result: BatchResult, looked_up=None) -> None:
        """Upsert items; count each outcome in result. Conflicts with other items or products
        become failures; a database error propagates so the caller can retry item by item.
        An item with children is one unit: its parent and children succeed or fail together.
        looked_up: what unchanged_skip read of the batch in this transaction."""
        items = list(items)
        fail = _failure_recorder(result)
        with sync_writes():
            known = known_read(items, looked_up, self.run_id, self.outcomes, self.compare)
            claim = sku_claims(items, self._partner_id, fail, known.existing)
            units = items_sort(items, known, self.run_id, claim, fail, self.only)
            self._write(units, known, result, fail)

    def _write(self, units: Sorted, known: Known, result: BatchResult, fail) -> None:
        attributes = self._resolve(units, fail)
        tree = self._category_tree()
        before = snapshots_before(units.changed, tree) if self.changes else None
        now = timezone.now()
        touched, member_ids = self._products_write(units, known.existing, now)
        result.hidden += _left_children_hide(units.changed, member_ids, now)
        self._categories_write(touched, units.changed)
        existed = {row.id for row in known.existing.values()}
        fed = {row.id: row.stock_fed for row in known.existing.values()}
        levels = StockLevels(fed, known.same, self.stock_authoritative)
        stockrecords_write(
            touched, member_ids, existed, self._partner_id, self.default_currency, levels
        )
        self._attributes.write(attributes, member_ids)
        attributes_clear(units.changed, member_ids)
        self._state_write(units, touched, member_ids, known.existing)
        _side_effects(result, units, touched, member_ids)
        if known.digests is not None:
            _compared(units, known)
        _counts_add(result, units, known)
        outcomes_add(
            result,
            units.new,
            units.changed,
            units.unchanged + units.untouched,
            every=self.outcomes,
            before=before,
            tree=tree,
        )

    def _resolve(self, units: Sorted, fail) -> dict:
        """Resolve the attributes and categories the new and changed items name; fail and
        drop the items that name one they cannot have. Return the resolved attributes."""
        attributes = self._attributes.resolve(units.written(), self._class_id, fail)
        writable = self._resolve_categories(
            [item for item in units.written() if item.position in attributes], fail
        )
        units.keep({item.position for item in writable})
        return attributes

    def _products_write(self, units: Sorted, existing: dict, now) -> tuple[list, dict]:
        """Insert the new products and update the changed ones, with their children.
        Return the touched units (item, product id) and the ids of their products by (item
        position, field prefix)."""
        upcs_release(units.changed, existing)
        new_ids = products_insert(
            [
                (
                    product_upc(item.record),
                    item.record.title,
                    item.record.slug or product_slug(item.record.title),
                    html_clean(item.record.description),
                    self._class_id(item.record.product_class),
                    item.record.is_public,
                    Product.PARENT if item.record.children else Product.STANDALONE,
                    None,
                )
                for item in units.new
            ]
        )
        touched = list(zip(units.new, new_ids, strict=True)) + units.changed
        # Of the products that exist, only the fields their items carry.
        updates = [
            (product_id, product_changes(item.record, self._class_id, now, existing[upc]))
            for item, product_id in units.changed
            for upc in [item.record.upc]
        ]
        member_ids = {(item.position, ""): product_id for item, product_id in touched}
        member_ids.update(_children_write(touched, existing, updates, now))
        products_update(updates)
        return touched, member_ids

    def _state_write(self, units: Sorted, touched, member_ids: dict, existing: dict) -> None:
        """Record the sync state of every product of the written and unchanged units (their
        fingerprints, this run and position); the edits counted of the written ones are
        repaired."""
        member_ids = dict(member_ids)  # with the unchanged units' products
        for item, product_id in units.unchanged:
            member_ids[(item.position, "")] = product_id
            for prefix, child in item.record.members()[1:]:
                member_ids[(item.position, prefix)] = existing[child.upc].id
        synced_at = timezone.now()
        state = [
            "sync_key",
            "source",
            "fingerprint",
            "raw_fingerprint",
            "synced_at",
            "last_run_id",
            "last_position",
            "stock_fed",
        ]
        insert_rows(
            SyncedProduct,
            ["product_id", *state],
            [
                (
                    member_ids[(item.position, prefix)],
                    member.upc,
                    self.source,
                    item.fingerprint,
                    item.raw_fingerprint,
                    synced_at,
                    self.run_id,
                    item.position,
                    stock_levels_fed(member, _fed_before(existing, member.upc)),
                )
                for item, _ in touched + units.unchanged
                for prefix, member in item.record.members()
            ],
            conflict=["product_id"],
            update=state,
        )
        edits_settle(edits_read([item for item, _ in touched], existing))

    def _categories_write(self, touched, changed) -> None:
        # Without per-row signals: Oscar's receiver would refresh the category materialised
        # view once per deleted row; the service refreshes it once per run.
        # An item that does not carry its categories leaves them as they are.
        replaced = [pid for item, pid in changed if carried(item.record, "categories")]
        if replaced:
            delete_quietly(ProductCategory.objects.filter(product_id__in=replaced))
        insert_rows(
            ProductCategory,
            ["product_id", "category_id"],
            [
                (product_id, category_id)
                for item, product_id in touched
                if carried(item.record, "categories")
                for category_id in dict.fromkeys(
                    self._categories.node(path).id for path in item.record.categories
                )
            ],
        )


def _children_write(touched, existing, updates, now) -> dict[tuple[int, str], int]:
    """Create the new children of the touched units and add the known ones to updates
    ((id, product_changes)); return their product ids by (item position, field prefix)."""
    keys: list[tuple[int, str]] = []
    rows: list[tuple] = []
    ids: dict[tuple[int, str], int] = {}
    for item, parent_id in touched:
        for prefix, child in item.record.members()[1:]:
            row = existing.get(child.upc)
            if row is None:
                keys.append((item.position, prefix))
                slug = child.slug or product_slug(child.title or item.record.title)
                description = html_clean(child.description)
                rows.append(
                    (product_upc(child), child.title, slug, description, None, child.is_public)
                )
                rows[-1] += (Product.CHILD, parent_id)
            else:
                updates.append((row.id, product_changes(child, None, now, row, parent_id)))
                ids[(item.position, prefix)] = row.id
    ids.update(zip(keys, products_insert(rows), strict=True))
    return ids


def _left_children_hide(changed, member_ids, now) -> int:
    """Hide (never delete: orders point at them) the children that left their unit (of
    the items that carry their children)."""
    parents = [pid for item, pid in changed if carried(item.record, "children")]
    if not parents:
        return 0
    left = list(
        Product.objects.filter(parent_id__in=parents, is_public=True)
        .exclude(pk__in=list(member_ids.values()))
        .values_list("pk", flat=True)
    )
    if left:
        Product.objects.filter(pk__in=left).update(is_public=False, date_updated=now)
        # Hidden by the sync: a child that comes back is public again (see product_changes).
        SyncedProduct.objects.filter(product_id__in=left).update(fingerprint="")
    return len(left)


def _fed_before(existing: dict, upc: str) -> str:
    """The stock levels the sync state kept for a product before this batch ('' if none)."""
    state = existing.get(upc)
    return (state.stock_fed if state is not None else "") or ""


def _failure_recorder(result: BatchResult):
    """fail(item, field, message, duplicate_of=None): record the item's failure in result."""

    def fail(item: ValidItem, field: str, message: str, duplicate_of=None) -> None:
        result.failures.append(
            ItemFailure(item.position, item.record.upc, message, item.raw(), field, duplicate_of)
        )

    return fail


def _compared(units: Sorted, known: Known) -> None:
    """Comparing by value: a unit written again only to compare it whose products' digests
    the write left as they were, and which no one edited, was unchanged."""
    again = [(item, pid) for item, pid in units.changed if pid in known.same]
    after = unit_digests(pid for _, pid in again)
    same = {
        pid
        for _, pid in again
        if pid not in known.drifted and after.get(pid) == known.digests.get(pid)
    }
    units.changed = [(item, pid) for item, pid in units.changed if pid not in same]
    units.unchanged += [(item, pid) for item, pid in again if pid in same]


def _counts_add(result: BatchResult, units: Sorted, known: Known) -> None:
    # A changed item whose unit had the item's fingerprint was written again because a
    # product of it drifted: repaired, not updated.
    repaired = sum(known.existing[item.record.upc].id in known.same for item, _ in units.changed)
    result.created += len(units.new)
    result.updated += len(units.changed) - repaired
    result.repaired += repaired
    result.unchanged += len(units.unchanged) + len(units.untouched)


def _side_effects(result: BatchResult, units: Sorted, touched, member_ids: dict) -> None:
    """What follows the batch: the written products' ids, the images to fetch, and the
    search index update once the batch commits."""
    written = [
        member_ids[(item.position, prefix)]
        for item, _ in touched
        for prefix, _member in item.record.members()
    ]
    result.product_ids.extend(written)
    # Every updated item (its image list may have shrunk), and the new and unchanged ones
    # with images (an image that failed last time is fetched again).
    updated_ids = {product_id for _, product_id in units.changed}
    result.images.extend(
        (product_id, item.record.upc, tuple(item.record.images))
        for item, product_id in touched + units.unchanged
        if carried(item.record, "images") and (item.record.images or product_id in updated_ids)
    )
    result.images.extend(
        (member_ids[(item.position, prefix)], child.upc, tuple(child.images))
        for item, product_id in touched
        for prefix, child in item.record.members()[1:]
        if carried(child, "images") and (child.images or product_id in updated_ids)
    )
    if written:
        # Bulk writes send no post_save, so Oscar's haystack signal processor never runs.
        # robust: a search server that is down is logged, it does not stop the run.
        transaction.on_commit(partial(search_index_update, written), robust=True)
