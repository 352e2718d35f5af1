"""The admin with a real django-q2 cluster (a `qcluster` subprocess on the test database, ORM
broker), through the test client and through headless Chromium driven by Selenium."""

import json
import queue
import threading
import time

import pytest
from django.db import connection
from django.urls import reverse
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.conftest import FIXTURES, qcluster_ready

pytestmark = pytest.mark.django_db(transaction=True)

ERRORS_FEED = str(FIXTURES / "products_with_errors.json")  # 40 items, 5 bad, 3 batches of 15
ERROR_UPCS = ["ERR-0003", "ERR-0017", "ERR-0024", "ERR-0005", "ERR-0038"]


def wait_for(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def qcluster(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real django-q2 cluster with one worker on the test database, up until the module ends."""
    log = tmp_path_factory.mktemp("qcluster") / "qcluster.log"
    with qcluster_ready({"Q_WORKERS": "1"}, log, django_db_blocker) as process:
        yield process


def url(name: str, *args) -> str:
    return reverse(f"admin:productsync_syncrun_{name}", args=args)


@pytest.fixture
def errors_feed_settings(settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SOURCE": ERRORS_FEED, "BATCH_SIZE": 15}


def _finished(run_id: int) -> SyncRun | None:
    run = SyncRun.objects.get(pk=run_id)
    return run if run.status != SyncRun.Status.RUNNING else None


def test_run_sync_now_and_retry_go_through_the_cluster(
    qcluster, admin_client, errors_feed_settings
):
    html = admin_client.get(url("changelist")).content.decode()
    assert "No django-q2 cluster is running" not in html
    response = admin_client.post(url("start"))
    queued = response["Location"]
    assert queued.startswith(url("queued", "x")[: -len("x/")])

    def run_url(page: str) -> str | None:
        status = page.replace("/?", "/status.json?", 1)
        return admin_client.get(status).json()["run_url"]

    first = wait_for(lambda: run_url(queued), what="the queued sync to record its run")
    run_id = int(first.rstrip("/").split("/")[-2])
    run = wait_for(lambda: _finished(run_id), what="the sync to finish")
    assert (run.trigger, run.status, run.source) == (
        "admin",
        "completed_with_failures",
        ERRORS_FEED,
    )
    assert (run.items, run.created, run.failed, run.batches) == (40, 35, 5, 3)
    page = admin_client.get(first).content.decode()
    assert "40 / 40 items (100%)" in page and 'id="ps-retry"' in page

    response = admin_client.post(url("retry", run_id))
    retry_page = wait_for(lambda: run_url(response["Location"]), what="the retry's run")
    retry_id = int(retry_page.rstrip("/").split("/")[-2])
    retry = wait_for(lambda: _finished(retry_id), what="the retry to finish")
    assert retry.retry_of_id == run_id
    # Four items are bad in themselves and fail again, at their positions in the feed; the
    # fifth failed only as the second item with UPC ERR-0005 of its feed: not retried, as it
    # would overwrite what its earlier twin wrote (the retry form has a box for that).
    assert (retry.trigger, retry.items, retry.failed, retry.updated) == ("admin", 4, 4, 0)
    assert list(retry.failure_set.values_list("position", flat=True)) == [3, 17, 24, 38]
    assert any("duplicate" in note for note in retry.notes)
    original_page = admin_client.get(first).content.decode()
    assert f'href="{url("change", retry_id)}">run {retry_id}</a>' in original_page


def test_a_browser_starts_a_sync_follows_it_and_downloads_its_failures(
    qcluster, live_server, browser, admin_user, errors_feed_settings
):
    # A page that reloads itself turns found elements stale: look them up again.
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))

    def text(element_id: str) -> str:
        return browser.find_element(By.ID, element_id).text

    def final_report(driver) -> bool:
        """The run page of a finished run: it has no progress URL left to poll."""
        progress = driver.find_element(By.ID, "ps-progress")
        return progress.get_attribute("data-url") is None and text("ps-status") != "running"

    # Log in and start a sync from the run list.
    browser.get(live_server.url + url("changelist"))
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.element_to_be_clickable((By.ID, "ps-run-now"))).click()

    # The queued page opens the run as soon as the worker records it; the run page follows
    # the run to its end.
    wait.until(ec.url_matches(r"/syncrun/\d+/change/"))
    wait.until(final_report)
    assert text("ps-status") == "completed with failures"
    assert text("ps-done") == "40 / 40 items (100%)"
    assert text("ps-eta") == "finished"
    run = SyncRun.objects.get()
    assert (run.trigger, run.failed) == ("admin", 5)

    # The picture: three bars, the first batch partial; a bar leads to its batch row.
    bars = browser.find_elements(By.CSS_SELECTOR, "#ps-picture svg rect")
    assert [b.get_attribute("class") for b in bars] == [
        "ps-bar-partial",
        "ps-bar-partial",
        "ps-bar-partial",
    ]
    browser.find_element(By.CSS_SELECTOR, "#ps-picture svg a").click()
    wait.until(ec.url_contains("#batch-1"))
    assert browser.find_element(By.ID, "batch-1").is_displayed()

    # Download the failed items as JSON Lines.
    browser.find_element(By.ID, "ps-download-jsonl").click()
    path = browser.downloads / f"run-{run.pk}-failures.jsonl"
    wait.until(lambda d: path.exists())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["upc"] for line in lines) == sorted(ERROR_UPCS)

    # Live progress, deterministically: a run held after each batch is followed in place.
    _follow_a_held_run(browser, live_server, wait, text, final_report)


def _follow_a_held_run(browser, live_server, wait, text, final_report) -> None:
    reached: queue.Queue = queue.Queue()
    proceed: queue.Queue = queue.Queue()

    def hold(run, result) -> None:
        reached.put((run.pk, result.number))
        proceed.get(timeout=30)

    def sync() -> None:
        try:
            sync_run_execute(ERRORS_FEED, batch_size=15, on_batch=hold)
        finally:
            connection.close()

    thread = threading.Thread(target=sync)
    thread.start()
    try:
        run_id, number = reached.get(timeout=30)
        assert number == 1
        browser.get(live_server.url + url("change", run_id))
        assert text("ps-status") == "running"
        assert text("ps-done") == "15 / 40 items (38%)"
        browser.execute_script("window.psSamePage = true;")
        proceed.put(None)
        assert reached.get(timeout=30) == (run_id, 2)
        wait.until(lambda d: text("ps-done") == "30 / 40 items (75%)")
        assert browser.execute_script("return window.psSamePage") is True  # no reload
        assert len(browser.find_elements(By.CSS_SELECTOR, "#ps-picture svg rect")) == 2
        proceed.put(None)
        assert reached.get(timeout=30) == (run_id, 3)
        proceed.put(None)
        # At the end the page loads the final report once, and stops polling.
        wait.until(final_report)
        assert browser.execute_script("return window.psSamePage") is None
        assert text("ps-status") == "completed with failures"
        assert text("ps-done") == "40 / 40 items (100%)"
    finally:
        for _ in range(3):
            proceed.put(None)
        thread.join(timeout=30)
