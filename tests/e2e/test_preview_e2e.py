"""Previews in headless Chromium as a shop team reads them before Confirm: a first import of a
Shopify export lists each new product's title, price and stock, and a stock file lists each
stock record's old and new price and stock. Screenshots are kept in PRODUCTSYNC_ARTEFACTS."""

import io

import pytest
from django.core.management import call_command
from selenium.webdriver.common.by import By

from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.admin.test_admin_clarity import artefacts
from tests.conftest import product, shared_data
from tests.e2e.test_admin_e2e import url

pytestmark = pytest.mark.django_db(transaction=True)


def dry_run_diff(*args: str) -> SyncRun:
    call_command(
        "sync_products", "--no-progress", "--dry-run", "--diff", *args, stdout=io.StringIO()
    )
    return SyncRun.objects.latest("pk")


def item_facts(browser, upc: str = "", position: int = 0) -> dict[str, tuple[str, str]]:
    """{field: (old, new)} of the item row of this UPC (else at this position) shown."""
    if upc:
        item = browser.find_element(By.XPATH, f"//tr[td[@title='{upc}']]")
    else:
        item = browser.find_element(By.ID, f"item-{position}")
    rows = item.find_elements(By.CSS_SELECTOR, ".ps-changes tr")
    facts = {}
    for row in rows:
        old = row.find_elements(By.CSS_SELECTOR, "del.ps-old")
        new = row.find_element(By.CSS_SELECTOR, "ins.ps-new").text
        facts[row.find_element(By.TAG_NAME, "th").text] = (old[0].text if old else "", new)
    return facts


def test_previews_of_a_first_import_and_of_a_stock_file_show_what_would_change(
    live_server, browser, admin_user, settings, write_feed, tmp_path
):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "FETCH_IMAGES": False}
    export = shared_data("shopify", "product_template.csv")
    first = dry_run_diff("--source", str(export), "--preset", "shopify")
    assert (first.created, first.failed) == (3, 0)

    browser.get(live_server.url + url("change", first.pk))
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    browser.get(live_server.url + url("change", first.pk) + "#items")
    browser.save_screenshot(str(artefacts(tmp_path) / "preview-first-import.png"))
    hat = item_facts(browser, "example-hat")
    assert hat["title"] == ("", "'Example Beanie'")
    assert hat["stockrecords[Shopify/HAT_GRY_275].price"] == ("", "'17.99'")
    assert hat["stockrecords[Shopify/HAT_GRY_275].num_in_stock"] == ("", "50")
    shirt = item_facts(browser, "example-shirt")
    assert shirt["title"] == ("", "'Example T-Shirt'") and shirt["children"] == ("", "12")
    prices = [new for field, (_, new) in shirt.items() if field.endswith(".price")]
    assert prices == ["'25.00'"] * 5  # the first five children, and their count
    pants = item_facts(browser, "example-pants")
    stocks = [new for field, (_, new) in pants.items() if field.endswith(".num_in_stock")]
    assert (pants["children"], stocks) == (("", "3"), ["20", "15", "10"])
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1400

    sync_run_execute(write_feed([product("A"), product("B")]))
    stock = tmp_path / "stock.csv"
    stock.write_text("sku,price,num_in_stock\nSKU-A,12.50,2\nSKU-B,10.00,5\n", encoding="utf-8")
    preview = dry_run_diff("--source", str(stock), "--partner", "Acme Books")
    assert (preview.updated, preview.unchanged) == (1, 1)
    browser.get(live_server.url + url("change", preview.pk) + "#items")
    browser.save_screenshot(str(artefacts(tmp_path) / "preview-stock-file.png"))
    assert item_facts(browser, position=0) == {
        "stockrecords[Acme Books/SKU-A].price": ("'10.00'", "'12.50'"),
        "stockrecords[Acme Books/SKU-A].num_in_stock": ("5", "2"),
    }
    assert browser.find_element(By.CSS_SELECTOR, "#item-0 td.ps-wrap").text == "SKU SKU-A"
    assert browser.find_element(By.CSS_SELECTOR, "#item-1 .ps-badge").text == "unchanged"
