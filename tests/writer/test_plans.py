"""Every statement of a batch takes an index path on a large catalogue (PostgreSQL plans)."""

import json
import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from oscar.core.loading import get_class, get_model

from productsync.services import sync_run_execute
from tests.conftest import product

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductAttribute = get_model("catalogue", "ProductAttribute")
AttributeOptionGroup = get_model("catalogue", "AttributeOptionGroup")
Partner = get_model("partner", "Partner")
create_from_breadcrumbs = get_class("catalogue.categories", "create_from_breadcrumbs")

# A catalogue 500 times the batch (a batch of 2,000 in 1,000,000 products), quick enough for CI;
# PRODUCTSYNC_PLAN_PRODUCTS and PRODUCTSYNC_PLAN_BATCH check other sizes (1M: minutes).
CATALOGUE = int(os.environ.get("PRODUCTSYNC_PLAN_PRODUCTS", 50_000))
BATCH = int(os.environ.get("PRODUCTSYNC_PLAN_BATCH", 100))
# The tables that grow with the catalogue: a sequential scan of one is a batch whose cost
# grows with the catalogue.
LARGE = {
    "catalogue_product",
    "partner_stockrecord",
    "catalogue_productcategory",
    "catalogue_productattributevalue",
    "catalogue_productattributevalue_value_multi_option",
    "productsync_syncedproduct",
}
CONTROL = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "COPY", "CREATE", "TRUNCATE")
CONTROL += ("SET", "SELECT pg_advisory", "SELECT nextval")


def catalogue_build(size: int) -> None:
    """size products, each with a stock record, a category link, an attribute value (with an
    option) and a
    sync state, written in SQL (as a shop that has synced them looks), then ANALYZEd."""
    book = ProductClass.objects.create(name="Book")
    partner = Partner.objects.create(name="Acme Books")
    category = create_from_breadcrumbs("Books > Computing")
    pages = ProductAttribute.objects.create(
        product_class=book, code="pages", name="pages", type="integer"
    )
    option = AttributeOptionGroup.objects.create(name="Bulk").options.create(option="bulk")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO catalogue_product (structure, upc, title, slug, description, "
            "date_created, date_updated, is_discountable, product_class_id, is_public, "
            "priority) SELECT 'standalone', 'BULK-' || n, 'Bulk ' || n, 'bulk-' || n, '', "
            "now(), now(), true, %s, true, 0 FROM generate_series(1, %s) n",
            [book.pk, size],
        )
        bulk = "FROM catalogue_product p WHERE p.upc LIKE 'BULK-%%'"
        cursor.execute(
            "INSERT INTO partner_stockrecord (partner_sku, price_currency, price, num_in_stock, "
            "date_created, date_updated, partner_id, product_id) SELECT 'SKU-' || p.upc, 'GBP', "
            f"10, 5, now(), now(), %s, p.id {bulk}",
            [partner.pk],
        )
        cursor.execute(
            "INSERT INTO catalogue_productcategory (category_id, product_id) "
            f"SELECT %s, p.id {bulk}",
            [category.pk],
        )
        cursor.execute(
            "INSERT INTO catalogue_productattributevalue (attribute_id, product_id, "
            f"value_integer) SELECT %s, p.id, 100 {bulk}",
            [pages.pk],
        )
        # (An option of an integer attribute: the planner sees a table of the catalogue's size.)
        cursor.execute(
            "INSERT INTO catalogue_productattributevalue_value_multi_option "
            "(productattributevalue_id, attributeoption_id) SELECT v.id, %s "
            "FROM catalogue_productattributevalue v",
            [option.pk],
        )
        cursor.execute(
            "INSERT INTO productsync_syncedproduct (product_id, source, fingerprint, "
            "raw_fingerprint, stock_fed, synced_at, last_run_id, last_position) "
            f"SELECT p.id, 'bulk', md5(p.upc), md5(p.upc), '', now(), NULL, NULL {bulk}"
        )
        for table in sorted(LARGE):
            cursor.execute(f"ANALYZE {table}")


def batch_statements(source: str, **options) -> list[str]:
    """The statements of the second batch of a run (the first also creates the shared
    rows), transaction control and COPY data left out."""
    marks = []

    def mark(run, result):
        marks.append(len(ctx.captured_queries))

    with CaptureQueriesContext(connection) as ctx:
        sync_run_execute(source, batch_size=BATCH, on_batch=mark, allow_mass_change=True, **options)
    statements = [q["sql"] for q in ctx.captured_queries[marks[0] : marks[1]]]
    return [sql for sql in statements if not sql.lstrip().upper().startswith(CONTROL)]


def seq_scans(sql: str) -> list[str]:
    """The large tables the statement's plan reads from end to end."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found, nodes = [], [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE:
            found.append(node["Relation Name"])
    return found


@pytest.mark.postgres
@pytest.mark.django_db
def test_no_batch_statement_scans_a_large_catalogue_table(write_feed):
    catalogue_build(CATALOGUE)
    items = [product(f"PLAN-{i:04d}", attributes={"pages": 200}) for i in range(3 * BATCH)]
    feed = write_feed(items, name="create.json")
    runs = {"create": batch_statements(feed)}
    runs["unchanged"] = batch_statements(write_feed(items, name="unchanged.json"))
    renamed = [{**item, "title": item["title"] + " (2nd ed.)"} for item in items]
    runs["update"] = batch_statements(write_feed(renamed, name="update.json"))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE partner_stockrecord SET price = 1 WHERE partner_sku LIKE 'SKU-PLAN%%'"
        )
    runs["repair"] = batch_statements(write_feed(renamed, name="repair.json"), full=True)
    runs["compare"] = batch_statements(write_feed(renamed, name="compare.json"), compare=True)
    stock = [
        {"partner": "Acme Books", "partner_sku": f"SKU-{item['upc']}", "num_in_stock": 3}
        for item in items
    ]
    runs["stock"] = batch_statements(write_feed(stock, name="stock.json"), partial=True)
    scans = [
        f"{kind}: {', '.join(tables)} in {sql[:300]}"
        for kind, statements in runs.items()
        for sql in statements
        for tables in [seq_scans(sql)]
        if tables
    ]
    assert all(runs.values()), runs
    assert not scans, "\n".join(scans)
