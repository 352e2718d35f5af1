"""Google Merchant Center feeds (RSS 2.0, Atom 1.0, tab-separated) synced with the google
preset: variants grouped by item_group_id in any order, prices with their currency,
availability as stock, typed attributes; a re-sync is unchanged."""

import contextlib
from decimal import Decimal

import pytest
from django.core.management import call_command
from oscar.core.loading import get_class, get_model

from productsync.feeds import feed_open
from productsync.models import SyncRun
from tests.catalogue import catalogue_clear, catalogue_snapshot, product_by_key
from tests.conftest import FIXTURES

Product = get_model("catalogue", "Product")
ProductAttribute = get_model("catalogue", "ProductAttribute")
StockRecord = get_model("partner", "StockRecord")
Selector = get_class("partner.strategy", "Selector")

GOOGLE = FIXTURES / "google"
RSS = GOOGLE / "rss-apparel-with-variants.xml"
ATOM = GOOGLE / "atom-apparel-with-variants.xml"
TSV = GOOGLE / "tsv-apparel-with-variants.tsv"


@pytest.fixture(autouse=True)
def no_image_fetching(settings):
    """The feeds name images on a shop's host: tests never fetch them."""
    settings.PRODUCTSYNC = {**getattr(settings, "PRODUCTSYNC", {}), "FETCH_IMAGES": False}


def sync(path, *extra: str) -> SyncRun:
    with contextlib.suppress(SystemExit):
        call_command("sync_products", "--source", str(path), "--no-progress", *extra)
    return SyncRun.objects.latest("pk")


def buyable(key: str) -> bool:
    product = product_by_key(key)
    return Selector().strategy().fetch_for_product(product).availability.is_available_to_buy


def stock(sku: str) -> tuple:
    record = StockRecord.objects.select_related("partner").get(partner_sku=sku)
    return record.partner.name, record.price, record.price_currency, record.num_in_stock


@pytest.mark.django_db
def test_a_google_rss_feed_lands_with_its_variants_grouped_in_any_order():
    run = sync(RSS, "--preset", "google")

    assert (run.status, run.items, run.created, run.failed) == ("succeeded", 4, 4, 0)
    tee = product_by_key("TEE-CLASSIC")
    assert tee.upc == ""  # an item_group_id is the key, not a barcode: no UPC
    children = {c.upc: c for c in tee.children.all()}
    # Three variants, the second listed after two other products.
    assert sorted(c.title for c in children.values()) == [
        "Classic Tee - Blue - L",
        "Classic Tee - Blue - M",
        "Classic Tee - Red - L",
    ]
    assert set(children) == {"0012345678905", "0012345678912", "0012345678929"}
    assert {c.productsync_state.sync_key for c in children.values()} == set(children)
    blue_m = children["0012345678905"]
    assert (blue_m.attr.color.option, blue_m.attr.size.option) == ("Blue", "M")
    assert blue_m.attr.sale_price == 14.99
    assert stock("TEE-BLU-M") == ("Example Apparel Store", Decimal("19.99"), "USD", None)
    assert stock("TEE-BLU-L")[1] == Decimal("21.50")
    # gtin is the UPC, and the key; without one, the id is the key and there is no UPC.
    mug = Product.objects.get(upc="4006381333931")
    assert mug.productsync_state.sync_key == "4006381333931"
    assert (mug.structure, mug.title, mug.description) == (
        "standalone",
        "Enamel Camp Mug",
        "A 350 ml enamel mug & its lid.",
    )
    assert (mug.attr.brand, mug.attr.mpn, mug.attr.condition.option) == (
        "Campfire",
        "CF-MUG-350",
        "new",
    )
    assert mug.attr.shipping_weight == "0.4 kg"
    assert [c.full_name for c in mug.categories.all()] == ["Home & Garden > Kitchen > Mugs"]
    socks = product_by_key("SOCK-3PK")  # plain RSS title, link and description
    assert (socks.upc, product_by_key("CAP-001").upc) == ("", "")
    assert (socks.title, socks.attr.link) == ("Wool Socks, 3 pairs", "http://localhost/shop/socks")
    assert sorted(c.full_name for c in socks.categories.all()) == [
        "Apparel > Socks",
        "Gifts > Stocking fillers",
    ]
    assert stock("SOCK-3PK") == ("Example Apparel Store", Decimal("24.00"), "EUR", None)
    # Availability: in stock, preorder and backorder are buyable, out of stock is not.
    assert stock("CAP-001")[3] == 0
    assert (buyable("4006381333931"), buyable("SOCK-3PK"), buyable("CAP-001")) == (
        True,
        True,
        False,
    )
    assert buyable("0012345678929")  # preorder
    types = {a.code: a.type for a in ProductAttribute.objects.all()}
    assert {k: types[k] for k in ("brand", "color", "size", "gender", "sale_price")} == {
        "brand": "text",
        "color": "option",
        "size": "option",
        "gender": "option",
        "sale_price": "float",
    }
    # What Oscar cannot hold is named, never dropped silently.
    assert "elements not imported: g:shipping" in run.notes


@pytest.mark.django_db
def test_a_google_feed_is_told_by_its_namespace_and_a_resync_is_unchanged():
    first = sync(RSS)
    assert "mapping: the google preset, detected from the feed's namespace" in first.notes

    again = sync(RSS, "--full")

    assert (again.status, again.items, again.unchanged, again.created, again.updated) == (
        "succeeded",
        4,
        4,
        0,
        0,
    )


@pytest.mark.django_db
def test_atom_and_tab_separated_forms_make_the_catalogue_of_the_rss_feed():
    sync(RSS, "--preset", "google")
    expected = catalogue_snapshot()
    assert len(expected["products"]) == 7

    # The tab-separated form has no channel title: the partner is given.
    for path, extra in ((ATOM, ()), (TSV, ("--partner", "Example Apparel Store"))):
        catalogue_clear()
        run = sync(path, "--preset", "google", *extra)
        assert not run.partial
        assert (run.status, run.created, run.failed) == ("succeeded", 4, 0), run.notes
        got = catalogue_snapshot()
        if path == TSV:  # one product_type column: the socks' second type is not in it
            socks = expected["products"]["SOCK-3PK"]
            got["products"]["SOCK-3PK"]["categories"] = socks["categories"]
            got["categories"] = expected["categories"]
        assert got == expected


def test_a_price_reads_as_amount_and_currency():
    with feed_open(str(RSS), count=False) as feed:
        items = {item.payload["upc"]: item.payload for item in feed}

    (record,) = items["CAP-001"]["stockrecords"]
    assert (record["price"], record["currency"], record["partner_sku"]) == (
        "15.00",
        "USD",
        "CAP-001",
    )
    # Images: image_link first, then each additional_image_link.
    assert items["4006381333931"]["images"] == [
        "http://localhost/shop/images/mug.jpg",
        "http://localhost/shop/images/mug-side.jpg",
        "http://localhost/shop/images/mug-top.jpg",
    ]


@pytest.mark.django_db
def test_a_google_feed_over_http_is_told_by_its_content_type_and_namespace(http_server):
    server = http_server()
    server.files["/feeds/products"] = (RSS.read_bytes(), "application/rss+xml; charset=utf-8")

    run = sync(server.url + "/feeds/products")

    assert (run.status, run.created, run.failed) == ("succeeded", 4, 0)
    assert product_by_key("TEE-CLASSIC").children.count() == 3


def test_a_price_that_is_not_an_amount_fails_its_item_naming_the_element(tmp_path):
    feed = tmp_path / "prices.xml"
    feed.write_text(
        RSS.read_text(encoding="utf-8")
        .replace("<g:price>12.50 USD</g:price>", "<g:price>12,50 USD</g:price>")
        .replace("<g:price>15.00 USD</g:price>", "<g:price>1e5 USD</g:price>"),
        encoding="utf-8",
    )

    with feed_open(str(feed), count=False) as opened:
        items = list(opened)

    failed = [item.payload for item in items if not isinstance(item.payload, dict)]
    # The line is where the item starts.
    assert [f.message for f in failed] == [
        "line 10, column 'g:price': stockrecords[0].price: '12,50' is not a number"
    ]
    (cap,) = [
        i.payload for i in items if isinstance(i.payload, dict) and i.payload["upc"] == "CAP-001"
    ]
    assert cap["stockrecords"][0]["price"] == "1e5"  # never a part of it ("1")
