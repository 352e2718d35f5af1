"""Several stock records per product: Oscar's multi-stockrecord product, removal of a stock
record that left the feed, and num_in_stock null (not tracked)."""

from decimal import Decimal

from oscar.core.loading import get_class, get_model

from productsync.services import sync_run_execute
from tests.oscar_catalogue import Fixture

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")
Selector = get_class("partner.strategy", "Selector")


def stock_of(upc: str) -> list[tuple]:
    return sorted(
        StockRecord.objects.filter(product__upc=upc).values_list(
            "partner__name", "partner_sku", "price", "num_in_stock"
        )
    )


def test_oscar_multi_stockrecord_product(db, write_feed):
    fixture = Fixture("multi-stockrecord-product.json")
    feed = fixture.feed()

    run = sync_run_execute(write_feed(feed))

    assert (run.status, run.created) == ("succeeded", 2)
    assert stock_of("oscar-1") == [
        ("Book partner", "a1", Decimal("20.00"), 5),
        ("Book partner", "a2", Decimal("10.00"), 15),
    ]
    assert stock_of("ABC") == []
    # Oscar's default strategy sells it from one of its stock records.
    info = Selector().strategy().fetch_for_product(Product.objects.get(upc="oscar-1"))
    assert info.stockrecord.partner_sku in ("a1", "a2")
    assert info.availability.is_available_to_buy


def test_a_stock_record_that_left_the_feed_is_removed_only_for_partners_in_it(db, write_feed):
    feed = Fixture("multi-stockrecord-product.json").feed()
    feed[0]["stockrecords"].append(
        {"partner": "Other partner", "partner_sku": "o1", "price": "19.00", "num_in_stock": 2}
    )
    sync_run_execute(write_feed(feed))
    item = feed[0]
    # a2 leaves the feed; Other partner is no longer named at all, so its record stays.
    item["stockrecords"] = [
        {"partner": "Book partner", "partner_sku": "a1", "price": "18.00", "num_in_stock": None},
        {"partner": "Third partner", "partner_sku": "t1", "price": "21.00", "num_in_stock": 1},
    ]

    run = sync_run_execute(write_feed(feed))

    assert (run.updated, run.unchanged) == (1, 1)
    assert stock_of("oscar-1") == [
        ("Book partner", "a1", Decimal("18.00"), None),
        ("Other partner", "o1", Decimal("19.00"), 2),
        ("Third partner", "t1", Decimal("21.00"), 1),
    ]
    # num_in_stock null is stored as null (unknown, not zero); whether Oscar then sells it is
    # the product class's track_stock: a class that does not track stock sells it.
    book = Product.objects.get(upc="oscar-1")
    book.product_class.track_stock = False
    book.product_class.save()
    assert StockRecord.objects.get(partner_sku="a1").num_in_stock is None
    strategy = Selector().strategy()
    for record in StockRecord.objects.filter(product__upc="oscar-1"):
        assert strategy.availability_policy(book, record).is_available_to_buy
