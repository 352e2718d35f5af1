"""The demo shop's storefront lists the synced catalogue: all products, each category, search;
and a platform's export, synced, looks native to its shoppers in Chromium."""

import contextlib
import re
from pathlib import Path
from typing import NamedTuple

import pytest
from django.core.cache import cache
from django.core.management import call_command
from oscar.core.loading import get_model
from PIL import Image
from selenium.webdriver.common.by import By

from productsync.services import sync_run_execute
from tests.conftest import FIXTURES, artefacts, product, shared_data

pytestmark = pytest.mark.django_db

Category = get_model("catalogue", "Category")
Product = get_model("catalogue", "Product")


def titles(html: str) -> list[str]:
    return re.findall(r'<h3[^>]*>\s*<a href="[^"]+" title="([^"]+)"', html)


def test_the_catalogue_page_lists_the_synced_products(client):
    run = sync_run_execute(str(FIXTURES / "products.json"))
    html = client.get("/catalogue/", follow=True).content.decode()
    public = run.created - 7  # 7 products of the demo feed are not public
    assert f"<strong>{public}</strong> results" in html
    assert len(titles(html)) == 20  # Oscar's first page


def test_a_category_page_lists_its_products(client, write_feed):
    sync_run_execute(
        write_feed(
            [
                product("F-1", title="A novel", categories=["Books > Fiction"]),
                product("C-1", title="A manual", categories=["Books > Computing"]),
                product("H-1", title="Hidden", categories=["Books > Fiction"], is_public=False),
            ]
        )
    )
    fiction = Category.objects.get(name="Fiction")
    html = client.get(fiction.get_absolute_url(), follow=True).content.decode()
    assert titles(html) == ["A novel"]
    found = client.get("/search/?q=manual", follow=True).content.decode()
    assert titles(found) == ["A manual"]


# What a platform keeps for itself, as a product page would name it: never shown to shoppers.
INTERNAL_NAMES = frozenset(
    {"inventory policy", "inventory tracker", "fulfillment service", "gift card", "taxable"}
    | {"requires shipping", "weight grams", "weight unit", "compare at price", "cost per item"}
    | {"barcode", "seo title", "seo description", "tax status", "tax class", "shipping class"}
    | {"backorders allowed", "download limit", "download expiry days", "purchase note"}
    | {"button text", "catalog visibility", "featured", "sale price", "meta title", "sale"}
    | {"meta keywords", "meta description", "tax class name", "special price", "new"}
    | {"has options", "required options", "erin recommends"}
)
IMAGE_URL = re.compile(r"https?://[^\s,\"]+?/([\w.-]+\.(?:jpg|jpeg|png))(?:\?[^\s,\"]*)?")


class Export(NamedTuple):
    path: str
    preset: str
    parent: str  # a parent product whose variants are checked
    child: str  # one of its variants, with an image of its own
    external: str | None  # a product sold elsewhere


EXPORTS = [
    Export("shopify/product_template.csv", "shopify", "example-shirt", "SRT_COT_222", None),
    Export(
        "woocommerce/sample_products.csv",
        "woocommerce",
        "woo-vneck-tee",
        "woo-vneck-tee-green",
        "wp-pennant",
    ),
    Export("magento/configurable_products.csv", "magento", "MH01", "MH01-XS-Black", None),
]


def local_export(export: Export, folder: Path) -> Path:
    """The export beside images of its own: CDN addresses become files beside the CSV (tests
    stay on loopback), every image a different colour; Magento's relative paths are made for
    the product under test only (the others are warnings)."""
    text = shared_data(export.path).read_text(encoding="utf-8-sig")
    text = IMAGE_URL.sub(lambda m: f"img/{m.group(1)}", text)
    names = set(re.findall(r"img/[\w.-]+", text))
    names |= set(re.findall(rf"/(m/h/{export.parent.lower()}[\w.-]*)", text))
    for i, name in enumerate(sorted(names)):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 40), ((i * 47) % 256, (i * 101) % 256, 90)).save(folder / name, "PNG")
    copy = folder / Path(export.path).name
    copy.write_text(text, encoding="utf-8")
    return copy


def page(browser, live_server, product, shots: Path, name: str) -> dict:
    """Open a product's page; what shoppers read there (its first image if it loaded)."""
    browser.get(live_server.url + product.get_absolute_url())
    browser.save_screenshot(str(shots / f"{name}.png"))
    rows = browser.find_elements(By.CSS_SELECTOR, "table tr")
    info = {
        row.find_element(By.TAG_NAME, "th").text.strip(): row.find_element(By.TAG_NAME, "td").text
        for row in rows
        if row.find_elements(By.TAG_NAME, "th") and row.find_elements(By.TAG_NAME, "td")
    }
    gallery = browser.find_elements(By.CSS_SELECTOR, "#product_gallery img, .img-thumbnail img")
    loaded = gallery and browser.execute_script("return arguments[0].naturalWidth", gallery[0])
    if rows:
        browser.execute_script("arguments[0].scrollIntoView()", rows[0])
        browser.save_screenshot(str(shots / f"{name}-information.png"))
    return {
        "info": info,
        "image": gallery[0].get_attribute("src") if loaded else None,
        "basket": bool(browser.find_elements(By.ID, "add_to_basket_form")),
        "html": browser.page_source,
    }


def by_key(key: str):
    """The product whose items name it by this key (an item's upc)."""
    return Product.objects.get(productsync_state__sync_key=key)


def attributes_shown(info: dict) -> list[str]:
    standard = {"UPC", "Product Type", "Availability", "Number of reviews"}
    return [name for name in info if name not in standard and not name.startswith("Price")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("export", EXPORTS, ids=lambda e: e.preset)
def test_a_platform_export_looks_native_in_the_storefront(
    export, tmp_path, settings, live_server, browser
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    cache.clear()  # thumbnails of another test's media folder are remembered there
    with contextlib.suppress(SystemExit):  # exits 1 when an image is missing (Magento)
        call_command("sync_products", "--source", str(local_export(export, tmp_path)))
    shots = artefacts(tmp_path) / f"storefront-{export.preset}"
    shots.mkdir(exist_ok=True)

    parent = by_key(export.parent)
    seen = page(browser, live_server, parent, shots, "parent")
    variants = [
        a.text
        for a in browser.find_elements(
            By.XPATH, "//h2[normalize-space()='Variants:']/following-sibling::a"
        )
    ]
    assert len(variants) == len(set(variants)) > 1, variants
    child = page(browser, live_server, by_key(export.child), shots, "child")
    assert child["image"] and child["image"] != seen["image"]
    pages = [seen, child]
    if export.external:
        external = by_key(export.external)
        pages.append(page(browser, live_server, external, shots, "external"))
        assert not pages[-1]["basket"]
        assert "https://mercantile.wordpress.org/" in pages[-1]["info"]["Buy at"]
    others = Product.objects.filter(is_public=True, parent=None).exclude(pk=parent.pk)
    pages += [page(browser, live_server, p, shots, p.slug) for p in others.order_by("pk")[:4]]
    # Issue 27: the UPC is the platform's barcode where it has one (Oscar shows the row only
    # for a product with a UPC), never a handle, SKU or "handle / option" it is synced by.
    keys = set(Product.objects.values_list("productsync_state__sync_key", flat=True))
    assert {export.parent, export.child} <= keys
    shown_upcs = [shown["info"]["UPC"] for shown in pages if "UPC" in shown["info"]]
    assert not set(shown_upcs) & keys, shown_upcs
    assert all(upc.isdigit() for upc in shown_upcs), shown_upcs
    for shown in pages:
        assert "stock not tracked" not in shown["html"]
        names = attributes_shown(shown["info"])
        assert not {n.lower() for n in names} & INTERNAL_NAMES, names
        assert all(name[:1].isupper() for name in names), names
