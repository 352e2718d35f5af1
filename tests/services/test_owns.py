"""A run that owns fields (--owns, a feed's owns, a mapping's) writes those and nothing else,
whatever its items carry; drift repair restores only those."""

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from oscar.core.loading import get_model

from productsync.models import Feed, SyncRun
from productsync.services import (
    FeedFileError,
    feed_run_execute,
    feeds_dump,
    feeds_load,
    sync_run_execute,
    sync_run_retry,
)
from tests.conftest import product

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

pytestmark = pytest.mark.django_db


def reprice(upc: str) -> dict:
    """The item as a supplier sends it later: new title, description and categories, a new
    price and stock level."""
    item = product(upc, title="Supplier's title", description="<p>Supplier's.</p>")
    item["categories"] = ["Elsewhere"]
    item["stockrecords"][0].update(price="7.50", num_in_stock=9)
    return item


def state(upc: str) -> tuple:
    book = Product.objects.get(upc=upc)
    record = book.stockrecords.get()
    categories = sorted(c.full_name for c in book.categories.all())
    return book.title, book.description, categories, record.price, record.num_in_stock


def test_owns_price_and_stock_writes_nothing_else(write_feed):
    sync_run_execute(write_feed([product("O1")]))
    before = state("O1")

    call_command(
        "sync_products", "--source", write_feed([reprice("O1")], "b.json"), "--owns",
        "price,num_in_stock",
    )  # fmt: skip

    run = SyncRun.objects.latest("pk")
    assert (run.status, run.updated, run.owns) == ("succeeded", 1, "price,num_in_stock")
    assert state("O1") == (*before[:3], Decimal("7.50"), 9)
    assert "owns price, num_in_stock: no other field is written" in run.notes


def test_drift_repair_restores_only_the_owned_fields(write_feed):
    source = write_feed([product("O2")])
    sync_run_execute(source, owns="price")
    Product.objects.filter(upc="O2").update(title="Shop's title")
    StockRecord.objects.filter(product__upc="O2").update(price=Decimal("1.00"))

    run = sync_run_execute(source, owns="price", full=True)

    assert (run.repaired, run.updated) == (1, 0)
    assert state("O2")[0] == "Shop's title"
    assert state("O2")[3] == Decimal("10.00")


def test_an_unknown_owned_field_is_refused_naming_the_known(write_feed):
    with pytest.raises(CommandError) as caught:
        call_command("sync_products", "--source", write_feed([product("O3")]), "--owns", "colour")

    assert "unknown field 'colour' (known: title, description" in str(caught.value)
    assert not Product.objects.exists()


def test_a_feed_owns_its_fields_and_its_retry_keeps_them(write_feed):
    sync_run_execute(write_feed([product("O4")]))
    items = [reprice("O4"), product("O5", title="")]  # the second fails: no title
    feed = Feed.objects.create(name="prices", source=write_feed(items, "b.json"), owns="price")
    before = state("O4")

    run = SyncRun.objects.get(pk=feed_run_execute("prices"))

    assert (run.owns, run.updated, run.failed) == ("price", 1, 1)
    assert state("O4") == (*before[:3], Decimal("7.50"), before[4])
    assert sync_run_retry(run.pk).owns == "price"
    feed.owns = "price, stock"
    with pytest.raises(ValidationError, match="unknown field 'stock'"):
        feed.full_clean()


def test_a_mapping_declares_what_its_feed_owns(write_feed, tmp_path):
    sync_run_execute(write_feed([product("O6")]))
    mapping = tmp_path / "prices.json"
    fields = {"upc": "upc", "title": "title", "product_class": "product_class"}
    fields |= {"partner": "partner", "partner_sku": "partner_sku", "price": "price"}
    mapping.write_text(json.dumps({"format": "csv", "owns": ["price"], "fields": fields}))
    feed = tmp_path / "prices.csv"
    feed.write_text("upc,title,product_class,partner,partner_sku,price\n")
    with open(feed, "a") as f:
        f.write("O6,Supplier's title,Book,Acme Books,SKU-O6,8.25\n")

    run = sync_run_execute(str(feed), feed_options={"mapping": str(mapping)})

    assert (run.owns, run.updated) == ("price", 1)
    assert state("O6")[0] == "Product O6"
    assert state("O6")[3] == Decimal("8.25")


def test_feeds_toml_gives_owns_as_a_list_and_refuses_an_unknown_field():
    feeds_load('[[feed]]\nname = "p"\nsource = "/a.json"\nowns = ["price", "num_in_stock"]')

    assert Feed.objects.get(name="p").owns == "price,num_in_stock"
    assert 'owns = "price,num_in_stock"' in feeds_dump()
    with pytest.raises(FeedFileError, match="unknown field 'stock'"):
        feeds_load('[[feed]]\nname = "q"\nsource = "/a.json"\nowns = ["stock"]')
