"""A feed changes only what it says: a field an item does not carry is left as it is; null
or an empty cell in a column the feed has clears it; a list given empty means none."""

import contextlib
import csv
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.models import SyncRun
from productsync.services import sync_run_execute
from productsync.writer.images import image_code
from tests.conftest import product, shared_data

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")
ProductImage = get_model("catalogue", "ProductImage")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_image_fetching(settings):
    """Image references stay references: tests never leave the loopback."""
    settings.PRODUCTSYNC = {**getattr(settings, "PRODUCTSYNC", {}), "FETCH_IMAGES": False}


def csv_write(path: Path, header: list[str], rows: list[dict]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def prices() -> dict[str, object]:
    return dict(StockRecord.objects.values_list("partner_sku", "price"))


def test_a_shopify_export_without_variant_price_leaves_every_price(tmp_path):
    original = shared_data("shopify/product_template.csv")
    with open(original, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames), list(reader)
    call_command("sync_products", "--source", str(original), "--preset", "shopify")
    before = prices()
    assert len(before) > 10 and all(price is not None for price in before.values())
    header.remove("Variant Price")
    source = csv_write(tmp_path / "no-price.csv", header, rows)

    with contextlib.suppress(SystemExit):
        call_command("sync_products", "--source", source, "--preset", "shopify")

    run = SyncRun.objects.latest("pk")
    assert (run.status, run.failed, run.created) == ("succeeded", 0, 0)
    assert prices() == before
    noted = [note for note in run.notes if note.startswith("the feed did not carry")]
    assert noted == ["the feed did not carry: price (column Variant Price) — left as they were"]


HEADER = ["upc", "title", "product_class", "description", "categories"]
STOCK = ["partner", "partner_sku", "price", "currency", "num_in_stock"]


def demo_rows() -> list[dict]:
    return [
        {
            "upc": f"A{n}",
            "title": f"Book {n}",
            "product_class": "Book",
            "description": f"<p>About {n}.</p>",
            "categories": "Books > Fiction",
            "partner": "Acme",
            "partner_sku": f"SKU-{n}",
            "price": f"1{n}.00",
            "currency": "GBP",
            "num_in_stock": "4",
        }
        for n in range(3)
    ]


def test_our_csv_without_price_and_description_leaves_them(tmp_path):
    sync_run_execute(csv_write(tmp_path / "full.csv", HEADER + STOCK, demo_rows()))
    rows = [{**row, "title": row["title"] + " (2nd ed.)"} for row in demo_rows()]
    header = [c for c in HEADER + STOCK if c not in ("price", "description")]

    run = sync_run_execute(csv_write(tmp_path / "lean.csv", header, rows))

    assert (run.status, run.updated) == ("succeeded", 3)
    book = Product.objects.get(upc="A1")
    assert (book.title, book.description) == ("Book 1 (2nd ed.)", "<p>About 1.</p>")
    assert str(book.stockrecords.get().price) == "11.00"
    assert "the feed did not carry: description, price — left as they were" in run.notes
    # An empty cell in a column the file has is a value: it clears.
    rows = [{**row, "description": "", "price": ""} for row in demo_rows()]
    sync_run_execute(csv_write(tmp_path / "empty.csv", HEADER + STOCK, rows))
    book = Product.objects.get(upc="A1")
    assert (book.description, book.stockrecords.get().price) == ("", None)


def test_json_without_description_leaves_it_and_null_clears_it(write_feed):
    sync_run_execute(write_feed([product("J1"), product("J2")]))
    lean = product("J1", title="Renamed")
    del lean["description"]

    run = sync_run_execute(write_feed([lean, product("J2", description=None)], "second.json"))

    assert (run.status, run.updated) == ("succeeded", 2)
    assert "the feed did not carry: description (1 of 2 items) — left as they were" in run.notes
    assert Product.objects.get(upc="J1").description == "<p>A book.</p>"
    assert Product.objects.get(upc="J1").title == "Renamed"
    assert Product.objects.get(upc="J2").description == ""
    # The item without its description is not taken for changed ever after.
    assert sync_run_execute(write_feed([lean], "third.json"), full=True).unchanged == 1


def test_an_absent_list_is_left_and_an_empty_one_means_none(write_feed, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREATE_ATTRIBUTES": True}
    full = {"attributes": {"author": "Ada"}}
    sync_run_execute(write_feed([product("L1", **full), product("L2", **full)]))
    for upc in ("L1", "L2"):  # as a sync fetches them, without a server
        pk = Product.objects.get(upc=upc).pk
        code = image_code(pk, "https://127.0.0.1:1/cover.jpg")
        ProductImage.objects.create(product_id=pk, code=code, original="cover.jpg")
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "FETCH_IMAGES": True}
    lean = product("L1", title="Lean")
    del lean["categories"]
    emptied = product("L2", categories=[], attributes={}, images=[])

    run = sync_run_execute(write_feed([lean, emptied], "second.json"))

    assert (run.status, run.updated) == ("succeeded", 2)
    kept, cleared = Product.objects.get(upc="L1"), Product.objects.get(upc="L2")
    assert kept.title == "Lean"
    assert kept.categories.count() == 1 and kept.images.count() == 1
    assert ProductAttributeValue.objects.filter(product=kept).count() == 1
    assert (cleared.categories.count(), cleared.images.count()) == (0, 0)
    assert not ProductAttributeValue.objects.filter(product=cleared).exists()


def test_stock_records_given_empty_are_none_and_left_out_are_kept(write_feed):
    sync_run_execute(write_feed([product("S1"), product("S2")]))
    lean = product("S1")
    del lean["stockrecords"]

    sync_run_execute(write_feed([lean, product("S2", stockrecords=[])], "second.json"))

    assert StockRecord.objects.filter(product__upc="S1").count() == 1
    assert not StockRecord.objects.filter(product__upc="S2").exists()


def test_a_mapped_json_item_without_its_key_leaves_the_field(write_feed, tmp_path):
    sync_run_execute(write_feed([product("M1"), product("M2")]))
    mapping = tmp_path / "mapping.json"
    fields = {"upc": "id", "title": "name", "product_class": {"value": "Book"}}
    mapping.write_text(json.dumps({"format": "json", "fields": {**fields, "description": "body"}}))
    items = [{"id": "M1", "name": "Mapped"}, {"id": "M2", "name": "Mapped", "body": None}]

    run = sync_run_execute(write_feed(items, "shop.json"), feed_options={"mapping": str(mapping)})

    assert (run.status, run.updated) == ("succeeded", 2)
    assert Product.objects.get(upc="M1").description == "<p>A book.</p>"
    assert Product.objects.get(upc="M2").description == ""


def test_a_parent_sent_without_its_children_keeps_them(write_feed):
    small = {"upc": "P1-S", "title": "Small"}
    small["stockrecords"] = [{"partner": "Acme Books", "partner_sku": "P1-S", "price": "3.00"}]
    parent = product("P1", children=[small])
    del parent["stockrecords"]
    sync_run_execute(write_feed([parent]))
    lean = product("P1", title="Renamed")
    del lean["stockrecords"]

    run = sync_run_execute(write_feed([lean], "second.json"))

    assert (run.updated, run.hidden) == (1, 0)
    assert Product.objects.get(upc="P1").structure == "parent"
    assert Product.objects.get(upc="P1-S").is_public
    stocked = sync_run_execute(write_feed([product("P1")], "third.json"))
    assert stocked.failure_set.get().field == "stockrecords"
    assert not StockRecord.objects.filter(product__upc="P1").exists()


def google_rss(tmp_path, name: str, item: str) -> str:
    path = tmp_path / name
    path.write_text(
        '<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0"><channel>'
        f"<item><g:id>G1</g:id><g:title>Scarf</g:title>{item}</item></channel></rss>",
        encoding="utf-8",
    )
    return str(path)


def test_an_xml_item_without_an_element_leaves_its_field_alone(tmp_path):
    full = "<g:description>Warm</g:description><g:product_type>Wear &gt; Scarves</g:product_type>"
    full += "<g:price>10.00 GBP</g:price>"
    first = sync_run_execute(google_rss(tmp_path, "a.xml", full), feed_options={"preset": "google"})
    assert (first.status, first.created) == ("succeeded", 1)

    bare = google_rss(tmp_path, "b.xml", "<g:availability>in_stock</g:availability>")
    again = sync_run_execute(bare, feed_options={"preset": "google"})

    assert again.status == "succeeded"
    scarf = Product.objects.get(productsync_state__sync_key="G1")
    assert scarf.description == "Warm"
    assert [c.name for c in scarf.get_categories()] == ["Scarves"]
    assert str(scarf.stockrecords.get().price) == "10.00"
