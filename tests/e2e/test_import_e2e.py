"""The import tool in headless Chromium with a real django-q2 cluster: upload a 10,000-item feed
with bad items, preview it, see a changed price highlighted, confirm, watch it finish, open its
changes; then download the catalogue and upload it again. Screenshots of the preview and the
changes go to artifacts/screenshots/ (or $PRODUCTSYNC_SCREENSHOTS) for a reviewer."""

import json
import os

import pytest
from oscar.core.loading import get_model
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.conftest import ROOT, product, qcluster_ready
from tests.e2e.test_admin_e2e import url

pytestmark = pytest.mark.django_db(transaction=True)

Category = get_model("catalogue", "Category")
ITEMS = 10_000
BAD = (17, 4_242, 9_999)
CHANGED = 7
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory, media):
    """A django-q2 cluster with one worker, storing uploads where the web process does."""
    log = tmp_path_factory.mktemp("qcluster") / "qcluster.log"
    env = {"Q_WORKERS": "1", "MEDIA_ROOT": str(media)}
    with qcluster_ready(env, log, django_db_blocker) as process:
        yield process


def screenshot(browser, name: str) -> None:
    folder = os.environ.get("PRODUCTSYNC_SCREENSHOTS") or SCREENSHOTS
    os.makedirs(folder, exist_ok=True)
    browser.save_screenshot(os.path.join(folder, name))


def feed_lines(items) -> str:
    return "".join(json.dumps(i) + "\n" for i in items)


def test_upload_preview_confirm_changes_export_and_reimport(
    cluster,
    live_server,
    browser,
    admin_user,
    settings,
    media,
    tmp_path,
):
    settings.MEDIA_ROOT = media
    first = tmp_path / "first.jsonl"
    first.write_text(feed_lines(product(f"E-{i:05}") for i in range(ITEMS)))
    base = sync_run_execute(str(first), batch_size=1000)
    assert base.created == ITEMS
    items = [product(f"E-{i:05}") for i in range(ITEMS)]
    items[CHANGED]["stockrecords"][0]["price"] = "12.50"
    for position in BAD:
        del items[position]["title"]
    items[BAD[1]]["upc"] = "U" * 70  # longer than a key may be: a long unbroken value shown
    second = tmp_path / "second.jsonl"
    second.write_text(feed_lines(items))

    wait = WebDriverWait(browser, 300, ignored_exceptions=(StaleElementReferenceException,))

    def finished(driver) -> bool:
        progress = driver.find_element(By.ID, "ps-progress")
        status = driver.find_element(By.ID, "ps-status").text
        return progress.get_attribute("data-url") is None and status != "running"

    browser.get(live_server.url + url("upload"))
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    def upload(path, action: str) -> None:
        browser.get(live_server.url + url("upload"))
        browser.find_element(By.NAME, "file").send_keys(str(path))
        size = browser.find_element(By.NAME, "batch_size")
        size.clear()
        size.send_keys("500")
        browser.find_element(By.CSS_SELECTOR, f"input[name=action][value={action}]").click()
        browser.find_element(By.ID, "ps-upload").click()
        wait.until(ec.url_matches(r"/syncrun/\d+/change/"))
        wait.until(finished)

    # Preview: nothing written, every item listed; the changed price is highlighted.
    upload(second, "preview")
    preview = SyncRun.objects.latest("pk")
    assert (preview.dry_run, preview.items, preview.updated, preview.failed) == (True, ITEMS, 1, 3)
    assert preview.unchanged == ITEMS - 4
    browser.get(live_server.url + url("change", preview.pk) + "?outcome=updated#items")
    new = browser.find_element(By.CSS_SELECTOR, "#ps-items ins.ps-new")
    assert new.text == "'12.50'"
    assert new.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
    assert browser.find_element(By.CSS_SELECTOR, "#ps-items del.ps-old").text == "'10.00'"
    screenshot(browser, "preview.png")
    browser.get(live_server.url + url("change", preview.pk) + "?outcome=failed#items")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ps-items > tbody > tr")) == 3
    assert "U" * 70 in browser.page_source
    # Pages no wider than the window, long values wrapped; the run list's counts visible.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1400
    browser.get(live_server.url + url("changelist"))
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1400
    for column in ("items", "created", "updated", "failed", "status_badge"):
        cell = browser.find_element(By.CSS_SELECTOR, f"#result_list td.field-{column}")
        assert cell.rect["x"] + cell.rect["width"] <= 1400, column
    browser.get(live_server.url + url("change", preview.pk))

    # Confirm: the worker syncs exactly that file.
    browser.find_element(By.ID, "ps-confirm").click()
    wait.until(lambda d: f"/syncrun/{preview.pk}/" not in d.current_url)
    wait.until(ec.url_matches(r"/syncrun/\d+/change/"))
    wait.until(finished)
    sync = SyncRun.objects.latest("pk")
    assert (sync.dry_run, sync.preview_of_id, sync.updated, sync.failed) == (
        False,
        preview.pk,
        1,
        3,
    )
    new = browser.find_element(By.CSS_SELECTOR, "#ps-items ins.ps-new")
    assert new.text == "'12.50'"
    screenshot(browser, "changes.png")

    # Export the catalogue and upload it again: every item unchanged.
    browser.get(live_server.url + url("changelist"))
    href = browser.find_element(By.ID, "ps-export-jsonl").get_attribute("href")
    exported = tmp_path / "catalogue.jsonl"
    browser.get(href)
    download = browser.downloads / "catalogue.jsonl"
    wait.until(lambda d: download.exists() and not list(browser.downloads.glob("*.crdownload")))
    exported.write_bytes(download.read_bytes())
    assert len(exported.read_text().splitlines()) == ITEMS
    upload(exported, "sync")
    again = SyncRun.objects.latest("pk")
    assert (again.items, again.unchanged, again.failed) == (ITEMS, ITEMS, 0)

    # The demo storefront lists the catalogue: all products, and a category's.
    browser.get(live_server.url + "/catalogue/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "article.product_pod")) == 20
    assert f"{ITEMS} results" in browser.find_element(By.TAG_NAME, "body").text
    computing = Category.objects.get(name="Computing")
    browser.get(live_server.url + computing.get_absolute_url())
    assert len(browser.find_elements(By.CSS_SELECTOR, "article.product_pod")) == 20
