"""The writer's query count per batch does not grow with the batch size, with children,
typed attributes and several stock records in every item."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from oscar.core.loading import get_model

from productsync.outcomes import BatchResult, ValidItem
from productsync.ownership import record_fingerprint
from productsync.records import record_parse
from productsync.writer import BatchWriter

Product = get_model("catalogue", "Product")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
StockRecord = get_model("partner", "StockRecord")
SIZES = ["Small", "Medium", "Large"]


@pytest.fixture
def shirt_class(db):
    from oscar.test import factories

    shirt = factories.ProductClassFactory(name="Shirt")
    sizes = factories.AttributeOptionGroupFactory(name="Sizes")
    for size in SIZES:
        factories.AttributeOptionFactory(group=sizes, option=size)
    for code, kind in [("material", "text"), ("weight", "float"), ("washable", "boolean")]:
        factories.ProductAttributeFactory(product_class=shirt, code=code, type=kind)
    for code, kind in [("size", "option"), ("fits", "multi_option")]:
        factories.ProductAttributeFactory(
            product_class=shirt, code=code, type=kind, option_group=sizes
        )
    return shirt


def shirts(count: int, tag: str, price: str = "10.00", sku: str = "") -> list[ValidItem]:
    items = []
    for n in range(count):
        upc = f"{tag}-{n}"
        payload = {
            "upc": upc,
            "title": f"Shirt {upc}",
            "product_class": "Shirt",
            "categories": ["Clothing > Shirts"],
            "attributes": {"material": "cotton", "weight": 0.2, "washable": True},
            "children": [
                {
                    "upc": f"{upc}-{size}",
                    "attributes": {"size": size, "fits": SIZES[: i + 1]},
                    "stockrecords": [
                        {"partner": p, "partner_sku": f"{p}-{upc}-{size}{sku}", "price": price}
                        for p in ("North", "South")
                    ],
                }
                for i, size in enumerate(SIZES[:2])
            ],
        }
        record = record_parse(payload)
        items.append(ValidItem(n, record, record_fingerprint(record)))
    return items


def queries_to_write(writer: BatchWriter, items: list[ValidItem]) -> int:
    result = BatchResult(1, 0, len(items) - 1, len(items))
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        writer.write(items, result)
    assert (result.failed, result.created + result.updated) == (0, len(items))
    return len(queries)


def test_queries_per_batch_do_not_grow_with_its_size(shirt_class):
    writer = BatchWriter(1, "feed.json", "GBP")
    queries_to_write(writer, shirts(1, "warm"))  # fills the per-run caches

    created = [queries_to_write(writer, shirts(n, f"new{n}")) for n in (15, 200)]
    # New prices, and new SKUs: the old stock records of both partners leave the feed.
    updated = [queries_to_write(writer, shirts(n, f"new{n}", "12.00", "-v2")) for n in (15, 200)]

    assert created[0] == created[1], created
    assert updated[0] == updated[1], updated
    assert Product.objects.filter(structure="child").count() == 2 * (1 + 15 + 200)
    assert StockRecord.objects.filter(partner_sku__endswith="-v2").count() == 4 * (15 + 200)
    assert StockRecord.objects.count() == 4 * (1 + 15 + 200)
    # 3 parent values and 2 per child
    assert ProductAttributeValue.objects.count() == 7 * (1 + 15 + 200)
    print(f"queries per batch: {created[0]} to create, {updated[0]} to update")


@pytest.mark.django_db
def test_text_that_copy_must_escape_is_written_as_given(write_feed):
    """PostgreSQL writes rows by COPY, whose text format gives tabs, newlines, backslashes
    and \\N a meaning of their own; every value must land as the feed gave it."""
    from productsync.services import sync_run_execute
    from tests.conftest import product

    awkward = "tab\there, line\nbreak, back\\slash, \\N, \"quoted\", 'single', ünïcødé ✓"
    items = [
        product(
            f"AWK-{n}",
            title=f"{awkward} {n}",
            description=awkward,
            categories=[f"Odd \\ Names > Tab\tand \\N {n % 2}"],
            stockrecords=[
                {"partner": "Back\\slash & Co", "partner_sku": f"SKU\t{n}", "price": "1.05"}
            ],
        )
        for n in range(3)
    ]

    run = sync_run_execute(write_feed(items), batch_size=15)

    assert run.created == 3, run.notes
    for n, p in enumerate(Product.objects.order_by("upc")):
        assert (p.title, p.description) == (f"{awkward} {n}", awkward)
        [record] = p.stockrecords.all()
        assert (record.partner.name, record.partner_sku, str(record.price)) == (
            "Back\\slash & Co",
            f"SKU\t{n}",
            "1.05",
        )
        assert [c.full_name for c in p.categories.all()] == [f"Odd \\ Names > Tab\tand \\N {n % 2}"]
