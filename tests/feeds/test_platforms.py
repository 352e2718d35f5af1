"""Shopify, WooCommerce and Magento exports (../shared/data) synced with their presets, in
batches of 15, checked against counts read from the files themselves."""

import contextlib
import csv
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from oscar.core.loading import get_class, get_model

from productsync.feeds import feed_open
from productsync.models import SyncRun
from tests.catalogue import product_by_key
from tests.conftest import shared_data

Product = get_model("catalogue", "Product")
ProductAttribute = get_model("catalogue", "ProductAttribute")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
ProductClass = get_model("catalogue", "ProductClass")
StockRecord = get_model("partner", "StockRecord")
Category = get_model("catalogue", "Category")
Selector = get_class("partner.strategy", "Selector")


@pytest.fixture(autouse=True)
def no_image_fetching(settings):
    """The exports name images on the platforms' CDNs: tests never leave the loopback."""
    settings.PRODUCTSYNC = {**getattr(settings, "PRODUCTSYNC", {}), "FETCH_IMAGES": False}


def rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def sync(path, preset: str | None = None, *extra: str) -> SyncRun:
    args = ["--source", str(path), "--batch-size", "15", *extra]
    if preset:
        args += ["--preset", preset]
    with contextlib.suppress(SystemExit):  # the command exits 1 when a run is not a success
        call_command("sync_products", *args)
    return SyncRun.objects.latest("pk")


def category_paths() -> set[str]:
    return {c.full_name for c in Category.objects.all()}


def with_ancestors(paths) -> set[str]:
    out = set()
    for path in paths:
        names = [n.strip() for n in path.split(">")]
        out |= {" > ".join(names[: i + 1]) for i in range(len(names))}
    return out


def buyable(products) -> int:
    strategy = Selector().strategy()
    return sum(strategy.fetch_for_product(p).availability.is_available_to_buy for p in products)


def attribute_types(class_names) -> dict[str, str]:
    attributes = ProductAttribute.objects.filter(product_class__name__in=class_names)
    return {a.code: a.type for a in attributes}


# Platform settings that shoppers never see: none may become a product attribute.
INTERNAL = frozenset(
    {"inventory_policy", "inventory_tracker", "fulfillment_service", "gift_card", "taxable"}
    | {"requires_shipping", "weight_grams", "weight_unit", "compare_at_price", "cost_per_item"}
    | {"barcode", "seo_title", "seo_description", "tax_status", "tax_class", "shipping_class"}
    | {"backorders_allowed", "download_limit", "download_expiry_days", "purchase_note"}
    | {"button_text", "catalog_visibility", "featured", "sale_price", "meta_title"}
    | {"meta_keywords", "meta_description", "tax_class_name", "special_price", "new", "sale"}
    | {"has_options", "required_options", "erin_recommends"}
)


def internals_absent(run: SyncRun, columns: list[str]) -> None:
    """No internal attribute and no class named for its stock tracking; the run's notes name
    the internal columns not imported, each once."""
    assert not INTERNAL & set(ProductAttribute.objects.values_list("code", flat=True))
    assert not ProductClass.objects.filter(name__contains="stock not tracked").exists()
    listed = [note for note in run.notes if note.startswith("columns not imported: ")]
    assert len(listed) == 1
    assert all(
        listed[0].count(f"{column},") + listed[0].endswith(column) == 1 for column in columns
    )


def key(product) -> str:
    """The product's sync key: what its items name in upc (a handle, a SKU)."""
    return product.productsync_state.sync_key


def upcs() -> set[str]:
    """Every product's UPC: the platform's barcode, never its key ("": none)."""
    return set(Product.objects.values_list("upc", flat=True))


def stock_of(sku: str) -> tuple:
    record = StockRecord.objects.get(partner_sku=sku)
    return record.price, record.num_in_stock


@pytest.mark.django_db
def test_shopify_export_lands_with_its_variants():
    path = shared_data("shopify/product_template.csv")
    source = rows(path)
    handles = list(dict.fromkeys(r["Handle"] for r in source))
    variants = [r for r in source if r["Option1 Value"]]
    per_handle = Counter(r["Handle"] for r in variants)

    run = sync(path, "shopify")

    assert (run.status, run.items, run.created, run.failed) == ("succeeded", 3, 3, 0)
    assert "mapping: the shopify preset, detected" not in run.notes  # named with --preset
    assert (len(handles), len(variants)) == (3, 16)
    parents = Product.objects.filter(structure="parent")
    assert {key(p) for p in parents} == {h for h, n in per_handle.items() if n > 1}
    assert Product.objects.filter(structure="child").count() == sum(
        n for n in per_handle.values() if n > 1
    )
    # "Default Title": a single default variant is one standalone product.
    hat = product_by_key("example-hat")
    assert (hat.structure, hat.slug, hat.is_public) == ("standalone", "example-hat", False)
    # The sample's barcodes were saved in exponent notation ("1.22328E+11"), their digits
    # lost: no product has a UPC, neither a handle nor a SKU is one.
    assert [r["Variant Barcode"] for r in source if r["Handle"] == "example-hat"] == ["1.22328E+11"]
    assert (hat.upc, upcs()) == ("", {""})
    # Old URLs survive: the handle is the slug.
    assert product_by_key("example-shirt").slug == "example-shirt"
    assert category_paths() == with_ancestors(
        {r["Product Category"] for r in source if r["Product Category"]}
    )
    for r in variants:
        assert stock_of(r["Variant SKU"]) == (
            Decimal(r["Variant Price"]),
            int(r["Variant Inventory Qty"]),
        )
    # Untracked variants (empty tracker) are buyable: every one of the 16 variants.
    sellable = Product.objects.exclude(structure="parent")
    assert sellable.count() == len(variants)
    assert buyable(sellable) == len(variants)
    shirts = product_by_key("example-shirt").product_class
    assert (shirts.name, shirts.track_stock) == ("Shirts", False)
    assert product_by_key("example-pants").product_class.track_stock is True
    types = attribute_types([shirts.name])
    assert {k: types[k] for k in ("color", "size", "tags", "vendor", "weight")} == {
        "color": "option",
        "size": "option",
        "tags": "multi_option",
        "vendor": "text",
        "weight": "text",
    }
    blue_m = product_by_key("SRT_COT_222")
    assert (blue_m.attr.color.option, blue_m.attr.size.option) == ("Blue", "M")
    shirt = product_by_key("example-shirt")
    assert sorted(o.option for o in shirt.attr.tags) == ["Made to Order", "Shirt Tag"]
    assert shirt.description.startswith("<p>This t-shirt")
    # Native: variants titled from their product and options, shoppers' names with units.
    assert blue_m.title == "Example T-Shirt - Blue / M"
    assert (blue_m.attr.weight, product_by_key("PNT_DEN_285").attr.weight) == (
        "145 g",
        "8 oz",
    )
    names = dict(ProductAttribute.objects.filter(product_class=shirts).values_list("code", "name"))
    assert {k: names[k] for k in ("weight", "vendor", "color", "size")} == {
        "weight": "Weight",
        "vendor": "Vendor",
        "color": "Color",
        "size": "Size",
    }
    internals_absent(run, ["Variant Fulfillment Service", "Variant Taxable", "SEO Title"])


@pytest.mark.django_db
def test_an_older_shopify_export_without_skus_is_detected_and_lands():
    path = shared_data("shopify/apparel.csv")
    source = rows(path)
    per_handle = Counter(r["Handle"] for r in source if r["Option1 Value"])

    run = sync(path)  # no preset: told from the header

    assert "mapping: the shopify preset, detected from the CSV header" in run.notes
    assert (run.status, run.items, run.failed) == ("succeeded", len(per_handle), 0)
    assert Product.objects.filter(structure="parent").count() == sum(
        n > 1 for n in per_handle.values()
    )
    assert Product.objects.filter(structure="child").count() == sum(
        n for n in per_handle.values() if n > 1
    )
    # No variant SKU: the handle and the option values name a variant, its key, not its UPC.
    medium = product_by_key("classic-varsity-top / Medium")
    assert (medium.structure, medium.upc) == ("child", "")
    assert not any(r["Variant Barcode"] for r in source)  # and no barcodes: no UPCs
    assert upcs() == {""}
    sellable = Product.objects.exclude(structure="parent")
    assert buyable(sellable) == sellable.count() == sum(per_handle.values())


@pytest.mark.django_db
def test_woocommerce_export_lands_with_its_variations():
    path = shared_data("woocommerce/sample_products.csv")
    source = rows(path)
    kinds = Counter(r["Type"] for r in source)
    variable = {r["SKU"] for r in source if r["Type"] == "variable"}
    variations = [r for r in source if r["Type"] == "variation"]
    # One variation is not next to its parent: grouping goes by reference.
    assert any(
        source[i]["Type"] == "variation" and source[i - 1]["Type"] not in ("variation", "variable")
        for i in range(1, len(source))
    )

    run = sync(path, "woocommerce")

    top = len(source) - kinds["variation"] - kinds["grouped"]
    assert (run.status, run.items, run.created, run.failed) == ("succeeded", top, top, 0)
    assert {key(p) for p in Product.objects.filter(structure="parent")} == variable
    assert (len(variable), len(variations)) == (2, 7)
    for r in variations:
        child = product_by_key(r["SKU"])
        assert (child.structure, key(child.parent)) == ("child", r["Parent"])
    # Grouped products have no Oscar equivalent: skipped, and the notes say so.
    assert not Product.objects.filter(productsync_state__sync_key="logo-collection").exists()
    assert "1 items skipped by the mapping's filter (Type equals 'grouped')" in run.notes
    assert category_paths() == with_ancestors(
        {c.strip() for r in source for c in r["Categories"].split(",") if c.strip()}
    )
    priced = [r for r in source if r["Regular price"] and r["Type"] != "grouped"]
    for r in priced:
        assert stock_of(r["SKU"]) == (
            Decimal(r["Regular price"]),
            0 if r["Type"] == "external" else None,
        )
    # Stock not managed: every priced product can be bought, but the external one.
    on_sale = [r["SKU"] for r in priced if r["Type"] != "external"]
    assert (
        buyable(Product.objects.filter(productsync_state__sync_key__in=on_sale)) == len(priced) - 1
    )
    # An export before WooCommerce 9.2 has no GTIN column: no product has a UPC, no SKU is one.
    assert "GTIN, UPC, EAN, or ISBN" not in source[0]
    assert upcs() == {""}
    hidden = product_by_key("woo-hoodie-with-pocket")
    assert hidden.is_public is False  # "Visibility in catalog: hidden"
    types = attribute_types(["Product"])
    assert (types["color"], types["weight"], types["length"]) == ("multi_option", "text", "text")
    tee = product_by_key("woo-vneck-tee")
    assert sorted(o.option for o in tee.attr.color) == ["Blue", "Green", "Red"]
    assert [o.option for o in product_by_key("woo-hoodie-red").attr.logo] == ["No"]
    album = product_by_key("woo-album").product_class
    assert (album.name, album.track_stock, album.requires_shipping) == (
        "Digital product",
        False,
        False,
    )
    # The external product is shown with where it is bought, and cannot be bought here.
    pennant = product_by_key("wp-pennant")
    assert pennant.attr.buy_at == "https://mercantile.wordpress.org/product/wordpress-pennant/"
    assert (pennant.product_class.name, buyable([pennant])) == ("External product", 0)
    assert product_by_key("woo-vneck-tee-red").title == "V-Neck T-Shirt - Red"
    assert product_by_key("woo-beanie").attr.weight == "0.2 lbs"
    internals_absent(run, ["Tax status", "Tax class", "Backorders allowed?", "Download limit"])


@pytest.mark.django_db
def test_magento_export_lands_with_its_configurable_products():
    path = shared_data("magento/configurable_products.csv")
    source = rows(path)
    configurable = [r for r in source if r["product_type"] == "configurable"]
    named = {
        part.split(",")[0].removeprefix("sku="): r["sku"]
        for r in configurable
        for part in r["configurable_variations"].split("|")
    }
    simple = [r for r in source if r["product_type"] == "simple"]

    run = sync(path, "magento")

    assert (len(configurable), len(simple)) == (147, 1847)
    assert (run.status, run.items, run.created, run.failed) == ("succeeded", 147, 147, 0)
    assert Product.objects.filter(structure="parent").count() == len(configurable)
    children = Product.objects.filter(structure="child").select_related(
        "productsync_state", "parent__productsync_state"
    )
    assert {key(c): key(c.parent) for c in children} == named
    assert upcs() == {""}  # Magento has no barcode attribute: the sku is a key, not a UPC
    assert category_paths() == with_ancestors(
        {
            c.removeprefix("Default Category/").replace("/", " > ")
            for r in source
            for c in r["categories"].split(",")
            if c != "Default Category"
        }
    )
    prices = dict(StockRecord.objects.values_list("partner_sku", "price"))
    levels = dict(StockRecord.objects.values_list("partner_sku", "num_in_stock"))
    assert prices == {r["sku"]: Decimal(r["price"]) for r in simple}
    assert levels == {r["sku"]: int(r["qty"]) for r in simple}
    assert buyable(children) == sum(int(r["qty"]) > 0 for r in simple)
    types = attribute_types(["Top", "Bottom"])
    assert {k: types[k] for k in ("size", "color", "climate", "eco_collection", "weight")} == {
        "size": "option",
        "color": "option",
        "climate": "multi_option",
        "eco_collection": "boolean",
        "weight": "text",
    }
    chaz = product_by_key("MH01")
    assert sorted(o.option for o in chaz.attr.climate) == sorted(
        ["All-weather", "Cool", "Indoor", "Spring", "Windy"]
    )
    assert product_by_key("MH01-XS-Black").slug == "chaz-kangeroo-hoodie-xs-black"
    assert ProductAttributeValue.objects.filter(attribute__code="size").count() == len(simple)
    assert product_by_key("MH01-XS-Black").title == "Chaz Kangeroo Hoodie-XS-Black"
    size = ProductAttribute.objects.filter(code="size").values_list("name", flat=True)
    assert set(size) == {"Size"}
    internals_absent(run, ["tax_class_name", "meta_title", "special_price"])
    flags = "erin_recommends, has_options, new, required_options, sale"
    assert run.notes.count(f"additional_attributes not imported: {flags}") == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "preset", "sku", "price_column"),
    [
        ("shopify/product_template.csv", "shopify", "SRT_COT_222", "Variant Price"),
        ("woocommerce/sample_products.csv", "woocommerce", "woo-hoodie-blue", "Regular price"),
        ("magento/configurable_products.csv", "magento", "MH01-M-Gray", "price"),
    ],
)
def test_a_rerun_is_unchanged_and_one_price_changed_is_one_update(
    tmp_path, path, preset, sku, price_column
):
    original = shared_data(path)
    copy = tmp_path / original.name
    copy.write_bytes(original.read_bytes())
    first = sync(copy, preset)

    again = sync(copy, preset, "--full")  # every item read again, not the file skipped

    assert (again.items, again.unchanged, again.created, again.updated) == (
        first.items,
        first.items,
        0,
        0,
    )
    source = rows(original)
    for r in source:
        if r.get("SKU", r.get("sku", r.get("Variant SKU"))) == sku:
            r[price_column] = "99.95"
    with open(copy, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(source[0]))
        writer.writeheader()
        writer.writerows(source)

    third = sync(copy, preset)

    assert (third.updated, third.created, third.unchanged) == (1, 0, first.items - 1)
    assert stock_of(sku)[0] == Decimal("99.95")


@pytest.mark.parametrize(
    ("path", "preset"),
    [
        ("shopify/product_template.csv", "shopify"),
        ("shopify/apparel.csv", "shopify"),
        ("woocommerce/sample_products.csv", "woocommerce"),
        ("magento/configurable_products.csv", "magento"),
    ],
)
def test_each_export_is_told_by_its_header(path, preset):
    with feed_open(str(shared_data(path)), count=False) as feed:
        first = next(iter(feed))

    assert feed.notes[0] == f"mapping: the {preset} preset, detected from the CSV header"
    assert isinstance(first.payload, dict) and first.payload["upc"]


@pytest.mark.parametrize(
    ("path", "sku", "image"),
    [
        ("shopify/product_template.csv", "SRT_COT_222", "cobalt-blue-t-shirt.jpg"),
        ("woocommerce/sample_products.csv", "woo-vneck-tee-green", "vnech-tee-green-1.jpg"),
        ("magento/configurable_products.csv", "MH01-XS-Black", "m/h/mh01-black_main.jpg"),
    ],
)
def test_variants_bring_their_own_images(path, sku, image):
    with feed_open(str(shared_data(path)), count=False) as feed:
        children = [c for item in feed for c in item.payload.get("children", [])]
    images = next(child["images"] for child in children if child["upc"] == sku)
    assert any(ref.split("?")[0].endswith(image) for ref in images)
