"""The only Oscar-aware module: upserts one batch of validated items with bulk queries."""

import contextlib
import functools
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.models import CASCADE, DO_NOTHING, SET_NULL, F, Q
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone
from oscar.checks import use_productcategory_materialised_view
from oscar.core.loading import get_class, get_model
from oscar.core.utils import slugify

from productsync.conf import app_settings
from productsync.exceptions import RecordError
from productsync.models import SyncedProduct
from productsync.records import (
    BatchResult,
    ItemFailure,
    ProductRecord,
    ValidItem,
    attribute_value,
)
from productsync.search import search_index_update

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductCategory = get_model("catalogue", "ProductCategory")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")
ProductAttribute = get_model("catalogue", "ProductAttribute")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
AttributeOption = get_model("catalogue", "AttributeOption")
MultiOption = ProductAttributeValue.value_multi_option.through
Category = get_model("catalogue", "Category")
create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")


def catalogue_category_view_refresh() -> None:
    """Refresh Oscar's product-category materialised view when Oscar uses it (PostgreSQL with
    OSCAR_CATALOGUE_USE_POSTGRES_MATERIALISED_VIEWS); the writer's bulk category writes skip
    the receiver that refreshes it per row."""
    if use_productcategory_materialised_view():
        view = "catalogue_product_category_hierarchy"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {view})")
            # CONCURRENTLY (as Oscar refreshes it) keeps the view readable meanwhile, at about
            # five times the cost; an empty view, as on a first load, has nothing to serve.
            concurrently = "CONCURRENTLY " if cursor.fetchone()[0] else ""
            cursor.execute(f"REFRESH MATERIALIZED VIEW {concurrently}{view}")


def products_missing(source: str, run_id: int, failed_upcs) -> list[int]:
    """Public products synced from source that run run_id did not write or find unchanged,
    leaving out the items that failed in the run (and their children)."""
    return list(
        Product.objects.filter(productsync_state__source=source, is_public=True)
        .exclude(productsync_state__last_run_id=run_id)
        .exclude(upc__in=failed_upcs)
        .exclude(parent__upc__in=failed_upcs)
        .values_list("pk", flat=True)
    )


def products_hide(product_ids: list[int], chunk: int = 5000) -> None:
    """Set products non-public (never deleted: orders and baskets point at them) and update
    the search index. date_updated moves on, so a product that comes back is rewritten."""
    now = timezone.now()
    for start in range(0, len(product_ids), chunk):
        Product.objects.filter(pk__in=product_ids[start : start + chunk]).update(
            is_public=False, date_updated=now
        )
    search_index_update(product_ids)


def _delete_quietly(queryset) -> None:
    """One DELETE statement, whatever the number of rows: no collector fetching the rows in
    chunks and no per-row signals. Only for rows nothing else points at."""
    queryset._raw_delete(queryset.db)


def _delete_with_dependents(model, pks: list[int]) -> None:
    """Delete rows, cascading to the rows that point at them by their on_delete rules, in a
    number of statements that does not grow with the rows (Django's collector deletes 100 rows
    per statement). Rules other than CASCADE, SET_NULL and DO_NOTHING go through Django."""
    if not pks:
        return
    rows = model._base_manager.filter(pk__in=pks)
    relations = model._meta.related_objects
    if any(r.many_to_many or r.on_delete not in (CASCADE, SET_NULL, DO_NOTHING) for r in relations):
        rows.delete()
        return
    for relation in relations:
        dependents = relation.related_model._base_manager.filter(
            **{f"{relation.field.name}__in": pks}
        )
        if relation.on_delete is CASCADE:
            dependents.delete()  # usually none: a single SELECT
        elif relation.on_delete is SET_NULL:
            dependents.update(**{relation.field.name: None})
    _delete_quietly(rows)


def _lift_sqlite_variable_limit() -> None:
    """Django assumes SQLite's old 999-variable limit and splits bulk queries by it; SQLite
    3.32+ allows 32766, so one batch stays one query whatever its size."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        connection.features.max_query_params = max(connection.features.max_query_params, limit)


_PLAIN_FIELDS = (models.CharField, models.TextField, models.BooleanField, models.IntegerField)


def _is_plain(field) -> bool:
    """Whether str/int/bool/None values of field go to the driver unchanged, as the ORM would
    send them (a subclass that overrides the preparation, like Oscar's NullCharField, is not)."""
    if isinstance(field, models.ForeignKey):
        # A key to an auto-increment id: an int the ORM checks only on MySQL.
        target = field.target_field
        return isinstance(target, models.AutoField) or _is_plain(target)
    base = next((b for b in _PLAIN_FIELDS if isinstance(field, b)), None)
    return base is not None and all(
        getattr(type(field), name) is getattr(base, name)
        for name in ("get_prep_value", "get_db_prep_value", "get_db_prep_save")
    )


def _prepared(rows: list, preps: list, conn) -> list:
    """rows with the values of the fields that need it passed through get_db_prep_save."""
    if not preps:
        return rows
    rows = [list(row) for row in rows]
    for i, prep in preps:
        last = prepared = object()
        for row in rows:
            if row[i] is not last:  # the same object (a batch's timestamp) is prepared once
                last, prepared = row[i], prep(row[i], conn)
            row[i] = prepared
    return rows


@dataclass(frozen=True)
class _InsertPlan:
    table: str  # quoted
    columns: str  # quoted, comma-separated: the given fields, then the others
    conflict: str  # " ON CONFLICT ... DO UPDATE SET ...", or ""
    returning: str  # quoted column, or ""
    others: list  # the fields that get their defaults
    preps: list  # (index, get_db_prep_save) of the given fields that need it
    copy: bool  # PostgreSQL: COPY the rows (returning, if any, is an auto-increment key)


@functools.lru_cache(maxsize=64)
def _insert_plan(model, fields: tuple, returning, conflict: tuple, update: tuple, vendor: str):
    """The SQL of insert_rows and what to prepare per value, worked out once per shape."""
    opts = model._meta
    quote = connection.ops.quote_name
    given = [opts.get_field(name) for name in fields]
    others = [f for f in opts.concrete_fields if not f.primary_key and f.attname not in fields]
    upsert = ""
    if conflict:
        names = [quote(opts.get_field(n).column) for n in conflict]
        sets = [
            f"{quote(c)} = EXCLUDED.{quote(c)}" for c in (opts.get_field(n).column for n in update)
        ]
        upsert = f" ON CONFLICT ({', '.join(names)}) DO UPDATE SET {', '.join(sets)}"
    returned = opts.get_field(returning) if returning else None
    return _InsertPlan(
        table=quote(opts.db_table),
        columns=", ".join(quote(f.column) for f in given + others),
        conflict=upsert,
        returning=quote(returned.column) if returned else "",
        others=others,
        preps=[(i, f.get_db_prep_save) for i, f in enumerate(given) if not _is_plain(f)],
        copy=vendor == "postgresql"
        and (
            returned is None
            or (returned.primary_key and isinstance(returned, AutoFieldMixin) and not conflict)
        ),
    )


def insert_rows(
    model,
    fields: list[str],
    rows: list[tuple],
    *,
    returning: str | None = None,
    conflict: list[str] | None = None,
    update: list[str] | None = None,
) -> list:
    """INSERT rows (tuples of the values of fields, by attname) through the driver: what
    bulk_create sends, without its per-object model instances and per-value compilation. Every
    other concrete field gets what save() writes for a new instance (its default; auto_now
    and auto_now_add: now; a file field: ''). With conflict and
    update, an upsert (ON CONFLICT ... DO UPDATE); with returning, the values of that column,
    in the order of rows. SQLite: one INSERT per max_query_params. PostgreSQL: COPY, which
    takes a tenth of the time of a thousand-row INSERT (whose placeholders psycopg parses and
    fills in Python): an upsert goes through a temporary table, and a returned primary key
    is taken from its sequence first."""
    if not rows:
        return []
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per value
    plan = _insert_plan(
        model, tuple(fields), returning, tuple(conflict or ()), tuple(update or ()), conn.vendor
    )
    blank = model()  # what save() would write for a new instance's other fields
    defaults = tuple(f.get_db_prep_save(f.pre_save(blank, True), conn) for f in plan.others)
    rows = _prepared(rows, plan.preps, conn)
    # One row is one round trip by INSERT, two or three by COPY. In a transaction: the
    # temporary table of an upsert lives until its end.
    if plan.copy and len(rows) > 1 and model not in _NO_SEQUENCE:
        with transaction.atomic(savepoint=False), conn.cursor() as cursor:
            ids = _copy_rows(cursor, model, plan, rows, defaults)
        if ids is not None:
            return ids
    with conn.cursor() as cursor:
        per_statement = len(rows)
        if conn.features.max_query_params:
            per_statement = max(1, conn.features.max_query_params // (len(fields) + len(defaults)))
        placeholder = "(" + ", ".join(["%s"] * (len(fields) + len(defaults))) + ")"
        tail = plan.conflict + (f" RETURNING {plan.returning}" if plan.returning else "")
        out = []
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            cursor.execute(
                f"INSERT INTO {plan.table} ({plan.columns}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + tail,
                [value for row in chunk for value in (*row, *defaults)],
            )
            if plan.returning:
                out.extend(value for (value,) in cursor.fetchall())
        return out


# Models whose auto-increment key has no sequence of its own (a table not made by Django's
# migrations, say): their returned keys come from INSERT ... RETURNING.
_NO_SEQUENCE: set = set()


def _copy_rows(cursor, model, plan: _InsertPlan, rows: list, defaults: tuple) -> list | None:
    """insert_rows on PostgreSQL, by COPY; None (nothing written) when the returned key has
    no sequence to take the keys from."""
    columns, ids = plan.columns, []
    if plan.returning:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [plan.table, model._meta.pk.column, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        if ids[0] is None:
            _NO_SEQUENCE.add(model)
            return None
        columns = f"{plan.returning}, {columns}"
        rows = [(pk, *row) for pk, row in zip(ids, rows, strict=True)]
    target = plan.table
    if plan.conflict:
        # Dropped at commit, emptied before each use (a rollback drops it too).
        target = connection.ops.quote_name(f"productsync_copy_{model._meta.db_table}"[:63])
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {target} ON COMMIT DROP AS "
            f"SELECT {columns} FROM {plan.table} WITH NO DATA; TRUNCATE {target}"
        )
    _copy(cursor, f"COPY {target} ({columns}) FROM STDIN", ((*row, *defaults) for row in rows))
    if plan.conflict:
        cursor.execute(
            f"INSERT INTO {plan.table} ({columns}) SELECT {columns} FROM {target}{plan.conflict}"
        )
    return ids


def _copy(cursor, sql: str, rows: Iterable[tuple]) -> None:
    """Run a COPY ... FROM STDIN of rows as Django runs a statement: through its execute
    wrappers (query counters), its error translation and, when queries are logged, its log."""

    def copy(sql, params, many, context):
        with cursor.db.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else contextlib.nullcontext()
    with logged:
        cursor._execute_with_wrappers(sql, None, False, copy)


def update_rows(model, fields: list[str], rows: list[tuple]) -> None:
    """UPDATE the rows (tuples of the primary key, then the values of fields by attname) with
    one statement per max_query_params, joining a VALUES list: what bulk_update writes, without
    its CASE WHEN per row and field (its compilation grows with the square of the batch)."""
    if not rows:
        return
    conn = connections[DEFAULT_DB_ALIAS]
    opts = model._meta
    quote = conn.ops.quote_name
    given = [opts.pk, *(opts.get_field(name) for name in fields)]
    preps = [(i, f.get_db_prep_save) for i, f in enumerate(given) if not _is_plain(f)]
    rows = _prepared(rows, preps, conn)
    names = [f"c{i}" for i in range(len(given))]
    # PostgreSQL types a VALUES list from its literals: cast the first row to the columns'
    # types. SQLite needs no casts (and a CAST would change a datetime's text affinity).
    casts = [f.cast_db_type(conn) if conn.vendor == "postgresql" else None for f in given]
    first = "(" + ", ".join("%s" if c is None else f"CAST(%s AS {c})" for c in casts) + ")"
    other = "(" + ", ".join(["%s"] * len(given)) + ")"
    table = quote(opts.db_table)
    sets = ", ".join(
        f"{quote(f.column)} = v.{n}" for f, n in zip(given[1:], names[1:], strict=True)
    )
    per_statement = len(rows)
    if conn.features.max_query_params:
        per_statement = max(1, conn.features.max_query_params // len(given))
    with conn.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = ", ".join([first] + [other] * (len(chunk) - 1))
            cursor.execute(
                f"WITH v({', '.join(names)}) AS (VALUES {values}) UPDATE {table} SET {sets} "
                f"FROM v WHERE {table}.{quote(opts.pk.column)} = v.c0",
                [value for row in chunk for value in row],
            )


def update_row(model, pk, values: dict, **where) -> bool:
    """UPDATE one row by primary key, if its fields also equal where, through the driver:
    what QuerySet.update() sends, without compiling it. Return whether the row matched."""
    conn = connections[DEFAULT_DB_ALIAS]
    opts, quote = model._meta, conn.ops.quote_name
    sets = [(opts.get_field(name), value) for name, value in values.items()]
    conditions = [(opts.pk, pk), *((opts.get_field(n), v) for n, v in where.items())]
    with conn.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(opts.db_table)} SET "
            + ", ".join(f"{quote(f.column)} = %s" for f, _ in sets)
            + " WHERE "
            + " AND ".join(f"{quote(f.column)} = %s" for f, _ in conditions),
            [f.get_db_prep_save(v, conn) for f, v in sets + conditions],
        )
        return cursor.rowcount > 0


# Rows of new products, and of updates after the primary key.
PRODUCT_COLUMNS = [
    "upc",
    "title",
    "slug",
    "description",
    "product_class_id",
    "is_public",
    "structure",
    "parent_id",
]
UPDATED_COLUMNS = [
    "title",
    "description",
    "product_class_id",
    "is_public",
    "structure",
    "parent_id",
    "date_updated",
]


@functools.lru_cache(maxsize=16)
def _names(model, vendor: str) -> dict[str, str]:
    """The quoted table (key "") and column names (by attname) of a model, for raw SQL;
    worked out once, not per batch."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return {"": quote(model._meta.db_table)} | {
        f.attname: quote(f.column) for f in model._meta.concrete_fields
    }


def _select(sql: str, *lists: list) -> list[tuple]:
    """Rows of a query with one "IN ({})" per list, each filled with one placeholder per
    value. The two lookups every batch makes are written in SQL, not built by the ORM: at 15
    items a batch, compiling the query took longer than running it."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.format(*(", ".join(["%s"] * len(values)) for values in lists)),
            [value for values in lists for value in values],
        )
        return cursor.fetchall()


def _sku_owners(wanted: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """The UPC of the product that has each (partner id, partner_sku) of wanted, if any."""
    if not wanted:
        return {}
    p, sr = _names(Product, connection.vendor), _names(StockRecord, connection.vendor)
    sql = (
        f"SELECT sr.{sr['partner_id']}, sr.{sr['partner_sku']}, p.{p['upc']} "
        f"FROM {sr['']} sr JOIN {p['']} p ON p.{p['id']} = sr.{sr['product_id']} "
        f"WHERE sr.{sr['partner_id']} IN ({{}}) AND sr.{sr['partner_sku']} IN ({{}})"
    )
    partners, skus = ({key[i] for key in wanted} for i in (0, 1))
    rows = _select(sql, list(partners), list(skus))
    return {(partner, sku): upc for partner, sku, upc in rows if (partner, sku) in wanted}


# What _products_by_upc tells of each product.
PRODUCT_STATE = (
    "id",
    "upc",
    "structure",
    "parent_upc",
    "edited",
    "fingerprint",
    "last_run_id",
    "last_position",
)


def _products_by_upc(upcs: set[str]) -> dict[str, dict]:
    """The products of these UPCs with their sync state. "edited": never synced, or changed
    since (in the dashboard, say), compared in the database rather than by parsing two
    datetimes per product here."""
    if not upcs:
        return {}
    p, s = _names(Product, connection.vendor), _names(SyncedProduct, connection.vendor)
    sql = (
        f"SELECT p.{p['id']}, p.{p['upc']}, p.{p['structure']}, parent.{p['upc']}, "
        f"CASE WHEN s.{s['synced_at']} IS NULL OR p.{p['date_updated']} > s.{s['synced_at']} "
        f"THEN 1 ELSE 0 END, s.{s['fingerprint']}, s.{s['last_run_id']}, "
        f"s.{s['last_position']} FROM {p['']} p "
        f"LEFT JOIN {p['']} parent ON parent.{p['id']} = p.{p['parent_id']} "
        f"LEFT JOIN {s['']} s ON s.{s['product_id']} = p.{p['id']} WHERE p.{p['upc']} IN ({{}})"
    )
    return {row[1]: dict(zip(PRODUCT_STATE, row, strict=True)) for row in _select(sql, list(upcs))}


def _insert_products(rows: list[tuple]) -> list[int]:
    """Insert products (rows of PRODUCT_COLUMNS); return their ids in order."""
    return insert_rows(Product, PRODUCT_COLUMNS, rows, returning="id")


def _slug(title: str) -> str:
    """The slug Product.save() would make, cut to the field's length (slugify can lengthen
    text: a ligature such as "ﬃ" becomes three letters)."""
    return slugify(title)[: Product._meta.get_field("slug").max_length]


class CategoryNode:
    """A category as the tree knows it: id (None until created), path and whether its
    children's ancestors are public."""

    __slots__ = ("id", "path", "public")

    def __init__(self, pk: int | None, path: str, public: bool) -> None:
        self.id, self.path, self.public = pk, path, public


class CategoryTree:
    """Oscar's category tree, read in one query, finding a breadcrumb's categories the way
    create_from_breadcrumbs does (by name under the parent; two of a name is an error). The
    missing ones are created in one insert, with the names, slugs, treebeard paths and flags
    that creating them one by one in the same order would give them."""

    def __init__(self) -> None:
        self.children: dict[str, dict[str, list[CategoryNode]]] = {}  # by parent path, name
        self.last_step: dict[str, int] = {}  # by parent path: the step of its last child
        self.planned: list[tuple[CategoryNode, str, int]] = []  # (node, name, depth)
        self.by_breadcrumb: dict[str, CategoryNode] = {}  # as given
        steplen = Category.steplen
        rows = Category.objects.values_list(
            "pk", "path", "name", "is_public", "ancestors_are_public"
        )
        for pk, path, name, is_public, ancestors_public in rows:
            parent, step = path[:-steplen], Category._str2int(path[-steplen:])
            node = CategoryNode(pk, path, is_public and ancestors_public)
            self.children.setdefault(parent, {}).setdefault(name, []).append(node)
            self.last_step[parent] = max(step, self.last_step.get(parent, 0))

    def node(self, breadcrumb: str) -> CategoryNode:
        """The last category of a breadcrumb ("A > B > C"), planned for creation with its
        missing ancestors when it does not exist; RecordError when a name is ambiguous."""
        if breadcrumb in self.by_breadcrumb:
            return self.by_breadcrumb[breadcrumb]
        if Category.node_order_by:
            # A forked Category that keeps siblings sorted: treebeard renumbers them on every
            # insert, so no path can be planned; Oscar's way, one category at a time.
            try:
                node = CategoryNode(create_from_breadcrumbs(breadcrumb).pk, "", True)
            except ValueError as exc:  # two categories of one name
                raise RecordError(f"categories: {breadcrumb!r}: {exc}", "categories") from None
            self.by_breadcrumb[breadcrumb] = node
            return node
        parent = CategoryNode(None, "", True)
        names = [name.strip() for name in breadcrumb.split(">")]
        for depth, name in enumerate(names, start=1):
            found = self.children.setdefault(parent.path, {}).get(name)
            if found and len(found) > 1:
                where = f"under {' > '.join(names[: depth - 1])!r}" if depth > 1 else "at the top"
                raise RecordError(
                    f"categories: {breadcrumb!r}: there are {len(found)} categories named "
                    f"{name!r} {where} of the tree",
                    "categories",
                )
            if not found:
                step = self.last_step.get(parent.path, 0) + 1
                self.last_step[parent.path] = step
                path = Category._get_path(parent.path, depth, step)
                if len(path) != depth * Category.steplen:  # treebeard's PathOverflow
                    raise RecordError(
                        f"categories: {breadcrumb!r}: {' > '.join(names[: depth - 1])!r} has "
                        "no room for another child category",
                        "categories",
                    )
                found = [CategoryNode(None, path, parent.public)]
                self.children[parent.path][name] = found
                self.planned.append((found[0], name, depth))
            parent = found[0]
        self.by_breadcrumb[breadcrumb] = parent
        return parent

    @transaction.atomic(savepoint=False)
    def create(self) -> None:
        """Insert the planned categories and count them in their parents' numchild."""
        if not self.planned:
            return
        ids = insert_rows(
            Category,
            ["name", "slug", "path", "depth", "ancestors_are_public"],
            [
                (name, Category(name=name).generate_slug(), node.path, depth, node.public)
                for node, name, depth in self.planned
            ],
            returning="id",
        )
        added: dict[str, int] = {}  # by parent path
        for (node, _, depth), pk in zip(self.planned, ids, strict=True):
            node.id = pk
            if depth > 1:
                parent = node.path[: -Category.steplen]
                added[parent] = added.get(parent, 0) + 1
        self.planned.clear()
        by_count: dict[int, list[str]] = {}
        for path, count in added.items():
            by_count.setdefault(count, []).append(path)
        for count, paths in by_count.items():
            Category.objects.filter(path__in=paths).update(numchild=F("numchild") + count)


class BatchWriter:
    """Writes batches for one run; caches classes, categories and partners across batches."""

    def __init__(self, run_id: int, source: str, default_currency: str) -> None:
        self.run_id = run_id
        self.source = source
        self.default_currency = default_currency
        self._classes: dict[str, int] = {}
        self._categories: CategoryTree | None = None  # read when first needed
        self._partners: dict[str, int] = {}
        # product class id -> {code: (attribute id, type, option group id, group name)}
        self._attributes: dict[int, dict[str, tuple[int, str, int | None, str]]] = {}
        # option group id -> {option: option id}
        self._options: dict[int, dict[str, int]] = {}
        _lift_sqlite_variable_limit()

    def forget(self) -> None:
        """Drop the caches: a rollback may have undone rows they point at."""
        self._classes.clear()
        self._categories = None
        self._partners.clear()
        self._attributes.clear()
        self._options.clear()

    # Lookups of the few shared rows, created on first sight and cached for the run.

    def _class_id(self, name: str) -> int:
        if name not in self._classes:
            pc = ProductClass.objects.filter(name=name).order_by("pk").first()
            self._classes[name] = (pc or ProductClass.objects.create(name=name)).pk
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

    def _class_attributes(self, class_id: int) -> dict[str, tuple[int, str, int | None, str]]:
        if class_id not in self._attributes:
            rows = ProductAttribute.objects.filter(product_class_id=class_id).values_list(
                "code", "id", "type", "option_group_id", "option_group__name"
            )
            self._attributes[class_id] = {
                code: (pk, kind, group, group_name or "")
                for code, pk, kind, group, group_name in rows
            }
        return self._attributes[class_id]

    def _attribute(self, class_id: int, code: str) -> tuple[int, str, int | None, str] | None:
        """The class's attribute of that code; an unknown code becomes a text attribute when
        PRODUCTSYNC['CREATE_ATTRIBUTES'] allows, else None."""
        attributes = self._class_attributes(class_id)
        if code not in attributes and app_settings.CREATE_ATTRIBUTES:
            created = ProductAttribute.objects.create(
                product_class_id=class_id, code=code, name=code.replace("_", " "), type="text"
            )
            attributes[code] = (created.pk, "text", None, "")
        return attributes.get(code)

    def _group_options(self, group_id: int) -> dict[str, int]:
        if group_id not in self._options:
            self._options[group_id] = dict(
                AttributeOption.objects.filter(group_id=group_id).values_list("option", "pk")
            )
        return self._options[group_id]

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
            self._class_id(record.product_class)
            for path in record.categories:
                with contextlib.suppress(RecordError):  # the batch's writer fails the item
                    tree.node(path)
            for sr in record.stockrecords:
                self._partner_id(sr.partner)
        tree.create()

    def write(self, items: Iterable[ValidItem], result: BatchResult) -> None:
        """Upsert items; count each outcome in result. Conflicts with other items or products
        become failures; a database error propagates so the caller can retry item by item.
        An item with children is one unit: its parent and children succeed or fail together."""
        items = list(items)

        def fail(item: ValidItem, field: str, message: str) -> None:
            result.failures.append(
                ItemFailure(item.position, item.record.upc, message, item.raw(), field)
            )

        existing = _products_by_upc(
            {member.upc for item in items for _, member in item.record.members()}
        )

        # In feed order, as if one item were written at a time: an item that fails does not
        # claim its UPC or SKUs, so the outcome does not depend on where batches split.
        new: list[ValidItem] = []
        changed: list[tuple[ValidItem, int]] = []
        unchanged: list[tuple[ValidItem, int]] = []
        accepted: dict[str, int] = {}
        claim = self._claim_skus(items, fail)
        for item in items:
            problem = self._structure_conflict(item, existing)
            row = existing.get(item.record.upc)
            seen = self._seen(item, accepted, existing)
            if seen is not None:
                fail(item, *seen)
            elif problem:
                fail(item, *problem)
            elif row is not None and self._unit_unchanged(item, existing):
                unchanged.append((item, row["id"]))
            elif not claim(item):
                continue
            elif row is None:
                new.append(item)
            else:
                changed.append((item, row["id"]))
            if seen is None and problem is None:
                accepted.update((m.upc, item.position) for _, m in item.record.members())

        attributes = self._resolve_attributes(new + [item for item, _ in changed], fail)
        writable = self._resolve_categories(
            [item for item in new + [item for item, _ in changed] if item.position in attributes],
            fail,
        )
        placed = {item.position for item in writable}
        new = [item for item in new if item.position in placed]
        changed = [(item, pid) for item, pid in changed if item.position in placed]

        now = timezone.now()
        new_ids = _insert_products(
            [
                (
                    item.record.upc,
                    item.record.title,
                    _slug(item.record.title),
                    item.record.description,
                    self._class_id(item.record.product_class),
                    item.record.is_public,
                    Product.PARENT if item.record.children else Product.STANDALONE,
                    None,
                )
                for item in new
            ]
        )
        touched = list(zip(new, new_ids, strict=True)) + changed
        # (id, title, description, class, is_public, structure, parent, date_updated)
        updates = [
            (
                product_id,
                item.record.title,
                item.record.description,
                self._class_id(item.record.product_class),
                item.record.is_public,
                Product.PARENT if item.record.children else Product.STANDALONE,
                None,
                now,
            )
            for item, product_id in changed
        ]
        member_ids = {(item.position, ""): product_id for item, product_id in touched}
        member_ids.update(self._write_children(touched, existing, updates, now))
        update_rows(Product, UPDATED_COLUMNS, updates)
        result.hidden += self._hide_left_children(changed, member_ids, now)
        self._write_categories(touched, changed)
        self._write_stockrecords(touched, member_ids, {row["id"] for row in existing.values()})
        self._write_attributes(attributes, member_ids)

        for item, product_id in unchanged:
            member_ids[(item.position, "")] = product_id
            for prefix, child in item.record.members()[1:]:
                member_ids[(item.position, prefix)] = existing[child.upc]["id"]
        synced_at = timezone.now()
        state = ["source", "fingerprint", "synced_at", "last_run_id", "last_position"]
        insert_rows(
            SyncedProduct,
            ["product_id", *state],
            [
                (
                    member_ids[(item.position, prefix)],
                    self.source,
                    item.fingerprint,
                    synced_at,
                    self.run_id,
                    item.position,
                )
                for item, _ in touched + unchanged
                for prefix, _member in item.record.members()
            ],
            conflict=["product_id"],
            update=state,
        )
        result.created += len(new)
        result.updated += len(changed)
        result.unchanged += len(unchanged)
        written = [
            member_ids[(item.position, prefix)]
            for item, _ in touched
            for prefix, _member in item.record.members()
        ]
        result.product_ids.extend(written)
        # Every updated item (its image list may have shrunk), and the new and unchanged ones
        # with images (an image that failed last time is fetched again).
        updated_ids = {product_id for _, product_id in changed}
        result.images.extend(
            (product_id, item.record.upc, tuple(item.record.images))
            for item, product_id in touched + unchanged
            if item.record.images or product_id in updated_ids
        )
        if written:
            # Bulk writes send no post_save, so Oscar's haystack signal processor never runs.
            # robust: a search server that is down is logged, it does not stop the run.
            transaction.on_commit(partial(search_index_update, written), robust=True)

    def _seen(self, item: ValidItem, accepted: dict, existing: dict) -> tuple[str, str] | None:
        """(field, message) when a upc of the unit was taken by an earlier item of the batch,
        or written earlier in this run by an item of an earlier batch."""
        for prefix, member in item.record.members():
            seen = accepted.get(member.upc)
            row = existing.get(member.upc)
            if seen is None and row and row["last_run_id"] == self.run_id:
                seen = row["last_position"]
                seen = None if seen == item.position else seen
            if seen is not None:
                return f"{prefix}upc", f"{prefix}upc: duplicate of the item at position {seen}"
        return None

    def _structure_conflict(self, item: ValidItem, existing: dict) -> tuple[str, str] | None:
        """(field, message) when an upc of the unit is taken by a product of another role: a
        product synced as a child elsewhere, or a child that belongs to another parent."""
        for prefix, member in item.record.members():
            row = existing.get(member.upc)
            if row is None:
                continue
            is_child = row["structure"] == Product.CHILD
            if not prefix and is_child:
                return "upc", (
                    f"upc: {member.upc!r} is a child of product {row['parent_upc']!r}; it "
                    "cannot become a product of its own"
                )
            if prefix and not (is_child and row["parent_upc"] == item.record.upc):
                owner = f"a child of {row['parent_upc']!r}" if is_child else "a product"
                return f"{prefix}upc", (
                    f"{prefix}upc: {member.upc!r} is already {owner}, not a child of "
                    f"{item.record.upc!r}"
                )
        return None

    @staticmethod
    def _unit_unchanged(item: ValidItem, existing: dict) -> bool:
        """Same fingerprint, every product of the unit present and none edited since."""
        if existing[item.record.upc]["fingerprint"] != item.fingerprint:
            return False
        for _, member in item.record.members():
            row = existing.get(member.upc)
            if row is None or row["edited"]:
                return False
        return True

    def _write_children(self, touched, existing, updates, now) -> dict[tuple[int, str], int]:
        """Create the new children of the touched units and add the known ones to updates
        (rows of UPDATED_COLUMNS); return their product ids by (item position, field prefix)."""
        keys: list[tuple[int, str]] = []
        rows: list[tuple] = []
        ids: dict[tuple[int, str], int] = {}
        for item, parent_id in touched:
            for prefix, child in item.record.members()[1:]:
                row = existing.get(child.upc)
                # title, description, class, is_public, structure, parent
                fields = (child.title, child.description, None, child.is_public)
                fields += (Product.CHILD, parent_id)
                if row is None:
                    keys.append((item.position, prefix))
                    rows.append(
                        (child.upc, fields[0], _slug(child.title or item.record.title), *fields[1:])
                    )
                else:
                    updates.append((row["id"], *fields, now))
                    ids[(item.position, prefix)] = row["id"]
        ids.update(zip(keys, _insert_products(rows), strict=True))
        return ids

    @staticmethod
    def _hide_left_children(changed, member_ids, now) -> int:
        """Hide (never delete: orders point at them) the children that left their unit."""
        if not changed:
            return 0
        return (
            Product.objects.filter(parent_id__in=[pid for _, pid in changed], is_public=True)
            .exclude(pk__in=list(member_ids.values()))
            .update(is_public=False, date_updated=now)
        )

    def _claim_skus(self, items, fail):
        """A check that fails an item whose (partner, partner_sku) belongs to a product outside
        its unit or to an earlier item of the batch, and else claims its SKUs; True if it may
        be written."""
        owners: dict[tuple[int, str], str] | None = None  # read on the first claim
        claimed: dict[tuple[int, str], str] = {}

        def allowed(item: ValidItem) -> bool:
            nonlocal owners
            if owners is None:
                owners = _sku_owners(
                    {
                        (self._partner_id(sr.partner), sr.partner_sku)
                        for other in items
                        for _, member in other.record.members()
                        for sr in member.stockrecords
                    }
                )
            unit = {member.upc for _, member in item.record.members()}
            for prefix, member in item.record.members():
                for sr in member.stockrecords:
                    key = (self._partner_id(sr.partner), sr.partner_sku)
                    owner = claimed.get(key) or owners.get(key)
                    if owner is not None and owner not in unit:
                        fail(
                            item,
                            f"{prefix}stockrecords.partner_sku",
                            f"{prefix}stockrecords.partner_sku: {sr.partner_sku!r} of "
                            f"{sr.partner!r} belongs to product {owner!r}",
                        )
                        return False
            for _, member in item.record.members():
                for sr in member.stockrecords:
                    claimed[(self._partner_id(sr.partner), sr.partner_sku)] = member.upc
            return True

        return allowed

    def _resolve_attributes(self, items: list[ValidItem], fail) -> dict[int, list]:
        """Type every attribute value against the item's product class; fail the items with a
        value that does not fit. Returns, by item position, (field prefix, attribute id, type,
        option group id, value) for each value to write (value None: remove it). Missing
        options of the items that pass are created."""
        plans: dict[int, list] = {}
        missing_options: set[tuple[int, str]] = set()
        for item in items:
            class_id = self._class_id(item.record.product_class)
            plan, wanted = [], set()
            try:
                for prefix, member in item.record.members():
                    for code, raw in member.attributes.items():
                        attribute, value = self._typed_value(item, class_id, prefix, code, raw)
                        attr_id, kind, group_id, _ = attribute
                        if kind in ("option", "multi_option") and value is not None:
                            known = self._group_options(group_id)
                            names = [value] if kind == "option" else value
                            wanted.update((group_id, n) for n in names if n not in known)
                        plan.append((prefix, attr_id, kind, group_id, value))
            except RecordError as exc:
                fail(item, exc.field, str(exc))
                continue
            missing_options |= wanted
            plans[item.position] = plan
        if missing_options:
            options = AttributeOption.objects.bulk_create(
                [AttributeOption(group_id=g, option=name) for g, name in sorted(missing_options)]
            )
            for option in options:
                self._options[option.group_id][option.option] = option.pk
        return plans

    def _typed_value(self, item: ValidItem, class_id: int, prefix: str, code: str, raw):
        """The class's attribute for code and the feed value converted to its type; raise
        RecordError naming the attribute when either does not fit."""
        field = f"{prefix}attributes.{code}"
        attribute = self._attribute(class_id, code)
        if attribute is None:
            raise RecordError(
                f"{field}: product class {item.record.product_class!r} has no attribute "
                f"{code!r} (PRODUCTSYNC['CREATE_ATTRIBUTES'] would create it as text)",
                field,
            )
        if raw is None:
            return attribute, None
        _, kind, group_id, group_name = attribute
        try:
            value = attribute_value(kind, raw)
        except ValueError as exc:
            raise RecordError(f"{field}: {exc}", field) from None
        if kind in ("option", "multi_option"):
            if group_id is None:
                raise RecordError(f"{field}: the {kind} attribute has no option group", field)
            known = self._group_options(group_id)
            unknown = [n for n in ([value] if kind == "option" else value) if n not in known]
            if unknown and not app_settings.CREATE_ATTRIBUTE_OPTIONS:
                raise RecordError(
                    f"{field}: {unknown[0]!r} is not an option of group {group_name!r} "
                    "(PRODUCTSYNC['CREATE_ATTRIBUTE_OPTIONS'] would add it)",
                    field,
                )
        return attribute, value

    def _write_categories(self, touched, changed) -> None:
        # Without per-row signals: Oscar's receiver would refresh the category materialised
        # view once per deleted row; the service refreshes it once per run.
        if changed:
            _delete_quietly(
                ProductCategory.objects.filter(product_id__in=[pid for _, pid in changed])
            )
        insert_rows(
            ProductCategory,
            ["product_id", "category_id"],
            [
                (product_id, category_id)
                for item, product_id in touched
                for category_id in dict.fromkeys(
                    self._categories.node(path).id for path in item.record.categories
                )
            ],
        )

    def _write_stockrecords(self, touched, member_ids, existed: set[int]) -> None:
        """Make each product's stock records of the partners its item names match the item;
        a parent product keeps none (Oscar's rule). existed: the ids of the products that
        were there before the batch, the only ones that can have stale records."""
        members = [
            (member, member_ids[(item.position, prefix)], bool(item.record.children) and not prefix)
            for item, _ in touched
            for prefix, member in item.record.members()
        ]
        keep = {
            (product_id, self._partner_id(sr.partner), sr.partner_sku)
            for member, product_id, _ in members
            for sr in member.stockrecords
        }
        # The records of the members' partners that left the feed (a parent keeps none): one
        # lookup by product id, filtered here; an OR per product would overflow SQLite's
        # expression depth at a thousand products.
        scope = {
            product_id: None
            if is_parent
            else {self._partner_id(sr.partner) for sr in member.stockrecords}
            for member, product_id, is_parent in members
        }
        scope = {
            pid: partners for pid, partners in scope.items() if partners != set() and pid in existed
        }
        stale = []
        if scope:
            stale = [
                pk
                for pk, product_id, partner_id, sku in StockRecord.objects.filter(
                    product_id__in=list(scope)
                ).values_list("pk", "product_id", "partner_id", "partner_sku")
                if (scope[product_id] is None or partner_id in scope[product_id])
                and (product_id, partner_id, sku) not in keep
            ]
        _delete_with_dependents(StockRecord, stale)
        insert_rows(
            StockRecord,
            ["product_id", "partner_id", "partner_sku", "price", "price_currency", "num_in_stock"],
            [
                (
                    product_id,
                    self._partner_id(sr.partner),
                    sr.partner_sku,
                    sr.price,
                    sr.currency or self.default_currency,
                    sr.num_in_stock,
                )
                for member, product_id, _ in members
                for sr in member.stockrecords
            ],
            conflict=["partner_id", "partner_sku"],
            update=["product_id", "price", "price_currency", "num_in_stock", "date_updated"],
        )

    def _write_attributes(self, plans: dict[int, list], member_ids) -> None:
        """Upsert the attribute values of the written products in bulk: one query to remove the
        nulled ones, one upsert, and two for the options of multi_option values."""
        values, removed, multi = [], Q(), {}
        for position, plan in plans.items():
            for prefix, attr_id, kind, group_id, value in plan:
                product_id = member_ids[(position, prefix)]
                if value is None:
                    removed |= Q(product_id=product_id, attribute_id=attr_id)
                    continue
                row = ProductAttributeValue(product_id=product_id, attribute_id=attr_id)
                if kind == "option":
                    row.value_option_id = self._options[group_id][value]
                elif kind == "multi_option":
                    multi[(product_id, attr_id)] = [self._options[group_id][v] for v in value]
                else:
                    setattr(row, f"value_{kind}", value)
                values.append(row)
        if removed:
            ProductAttributeValue.objects.filter(removed).delete()
        value_fields = [
            f"value_{kind}"
            for kind in ("text", "integer", "boolean", "float", "richtext", "date", "datetime")
        ] + ["value_option"]
        ProductAttributeValue.objects.bulk_create(
            values,
            update_conflicts=True,
            unique_fields=["attribute", "product"],
            update_fields=value_fields,
        )
        multi_ids = {
            row.pk: multi[(row.product_id, row.attribute_id)]
            for row in values
            if (row.product_id, row.attribute_id) in multi
        }
        if multi_ids:
            _delete_quietly(
                MultiOption.objects.filter(productattributevalue_id__in=list(multi_ids))
            )
            MultiOption.objects.bulk_create(
                [
                    MultiOption(productattributevalue_id=pav_id, attributeoption_id=option_id)
                    for pav_id, options in multi_ids.items()
                    for option_id in options
                ]
            )
