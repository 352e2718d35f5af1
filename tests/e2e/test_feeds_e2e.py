"""Feeds end to end, in real processes: a qcluster over Redis fires the feeds' schedules
(a catalogue and a stock file side by side, a failing feed that alerts by e-mail and a
signed webhook, an overdue feed), a `runserver` takes pushed files, and Chromium uploads a
stock file in the admin."""

import contextlib
import gzip
import hashlib
import hmac
import json
import re
import socket
import uuid
from datetime import timedelta
from email import message_from_string
from io import StringIO

import pytest
import redis
import requests
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from oscar.core.loading import get_model
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from productsync.models import Alert, Feed, SyncRun
from tests.conftest import REDIS_URL, product, qcluster, spawn_command, stop_group, wait_for
from tests.httpserver import FeedHandler, feed_server_start, feed_server_stop

pytestmark = pytest.mark.django_db(transaction=True)

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")
SECRET = "e2e-webhook-secret"
FINAL = ("succeeded", "partial", "failed", "aborted", "skipped")


class HookHandler(FeedHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts.append((dict(self.headers), body))
        self.send(204)


@pytest.fixture
def hook():
    server = feed_server_start(HookHandler)
    server.posts = []
    yield server
    feed_server_stop(server)


@pytest.fixture
def env(tmp_path):
    """Redis-brokered processes that alert into files and a loopback webhook."""
    name = f"ps24-{uuid.uuid4().hex[:8]}"
    (tmp_path / "mail").mkdir()
    yield {
        "Q_REDIS_URL": REDIS_URL,
        "Q_CLUSTER_NAME": name,
        "Q_WORKERS": "2",
        "Q_TIMEOUT": "120",
        "Q_RETRY": "130",
        "Q_POLL": "0.1",
        "PRODUCTSYNC_WEBHOOK_SECRET": SECRET,
        "PRODUCTSYNC_ALLOW_PRIVATE": "127.0.0.1",
        "PRODUCTSYNC_BASE_URL": "https://shop.localhost",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "PRODUCTSYNC_UPLOAD_MAX_BYTES": "4096",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    redis.from_url(REDIS_URL).delete(f"django_q:{name}:q")


def finished(pk: int) -> SyncRun | None:
    run = SyncRun.objects.filter(pk=pk, status__in=FINAL).first()
    return run


def signed(hook) -> list[dict]:
    out = []
    for headers, body in hook.posts:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Productsync-Signature"] == expected
        out.append(json.loads(body))
    return out


def mails(env) -> list:
    from pathlib import Path

    folder = Path(env["EMAIL_FILE_PATH"])
    return [message_from_string(p.read_text()) for p in sorted(folder.iterdir())]


FEEDS = """
[[feed]]
name = "pim"
source = "{catalogue}"
schedule = "*/5 * * * *"

[[feed]]
name = "acme-stock"
kind = "stock"
partner = "Acme Books"
source = "{stock}"
schedule = "*/5 * * * *"

[[feed]]
name = "broken"
source = "{missing}"
schedule = "*/5 * * * *"
alert_emails = ["team@example.com"]
alert_webhook = "{hook}/alerts"

[[feed]]
name = "late-supplier"
kind = "stock"
partner = "Acme Books"
source = "{stock}"
overdue_after = "1h"
alert_webhook = "{hook}/alerts"
"""


def test_scheduled_feeds_fire_side_by_side_and_alert(env, hook, tmp_path, write_feed):
    catalogue = write_feed([product(f"E-{i}") for i in range(12)], "pim.json")
    stock = tmp_path / "acme.csv"
    stock.write_text("sku,price,num_in_stock\nSKU-E-0,3.25,40\nSKU-E-1,4.50,0\n")
    text = FEEDS.format(
        catalogue=catalogue, stock=stock, missing=tmp_path / "none.json", hook=hook.url
    )
    path = tmp_path / "feeds.toml"
    path.write_text(text)
    call_command("feeds_load", str(path), stdout=StringIO())
    feeds = {f.name: f for f in Feed.objects.all()}
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {f"productsync.feed.{n}" for n in ("pim", "acme-stock", "broken")} <= names
    assert "productsync.feeds_overdue" in names
    # The stock file's SKUs exist (an earlier nightly), so both feeds can run at once.
    call_command("sync_products", "--feed", "pim", stdout=StringIO())
    Feed.objects.filter(name="late-supplier").update(created_at=timezone.now() - timedelta(days=1))
    Schedule.objects.update(next_run=timezone.now() - timedelta(minutes=1))

    log = tmp_path / "qcluster.log"
    # The scheduler runs on the guard's first round, right after start.
    with qcluster({**env, "Q_GUARD_CYCLE": "30"}, log):
        runs = wait_for(
            lambda: (
                list(SyncRun.objects.filter(trigger="schedule", status__in=FINAL))
                if SyncRun.objects.filter(trigger="schedule", status__in=FINAL).count() >= 3
                else None
            ),
            120,
            "three scheduled runs",
            log,
        )
        wait_for(lambda: len(hook.posts) >= 2, 60, "the failure and overdue webhooks", log)
    by_feed = {run.feed_id: run for run in runs}
    pim, acme, broken = (by_feed[feeds[n].pk] for n in ("pim", "acme-stock", "broken"))
    assert (pim.status, pim.partial, pim.source) == ("succeeded", False, catalogue)
    assert (acme.status, acme.partial, acme.updated) == ("succeeded", True, 2), acme.error
    assert broken.status == "failed"
    record = StockRecord.objects.get(partner_sku="SKU-E-0")
    assert (str(record.price), record.num_in_stock) == ("3.25", 40)

    alerts = {a["feed"]: a for a in signed(hook)}
    assert (alerts["broken"]["alert"], alerts["broken"]["run_id"]) == ("failed", broken.pk)
    assert alerts["broken"]["url"].endswith(f"/admin/productsync/syncrun/{broken.pk}/change/")
    assert alerts["late-supplier"]["alert"] == "overdue"
    [message] = [m for m in mails(env) if m["To"] == "team@example.com"]
    assert "broken" in message["Subject"] and "failed" in message["Subject"]
    assert Alert.objects.filter(feed__name="broken", sent=True).count() == 2

    # --prune with a file naming none of them: the feeds and their schedules are gone.
    empty = tmp_path / "none.toml"
    empty.write_text("")
    call_command("feeds_load", str(empty), "--prune", stdout=StringIO())
    assert not Feed.objects.exists()
    assert not Schedule.objects.filter(name__startswith="productsync.feed").exists()
    assert SyncRun.objects.filter(feed=None).count() == SyncRun.objects.count()


@contextlib.contextmanager
def cluster_up(env, log):
    """A qcluster over Redis, once its status is in Redis (where the web process looks)."""
    keys = f"django_q:{env['Q_CLUSTER_NAME']}:cluster*"
    with qcluster(env, log) as proc:
        wait_for(lambda: redis.from_url(REDIS_URL).keys(keys), 60, "the cluster's status", log)
        yield proc


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def web(env, log):
    """`manage.py runserver` on loopback, serving the demo shop with its admin and push URL."""
    port = _free_port()
    proc = spawn_command("runserver", f"127.0.0.1:{port}", "--noreload", env=env, log=log)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(url + "/admin/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(up, 60, "runserver", log)
        yield url
    finally:
        stop_group(proc)


def test_a_pushed_file_is_queued_and_synced(env, tmp_path, write_feed):
    write_feed([product(f"P-{i}") for i in range(3)], "first.json")
    call_command("sync_products", "--source", str(tmp_path / "first.json"), stdout=StringIO())
    feed = Feed.objects.create(name="erp-stock", kind="stock", partner="Acme Books")
    Feed.objects.create(name="off", kind="partial", enabled=False)
    out = StringIO()
    call_command("feeds_token", "erp-stock", stdout=out)
    token = out.getvalue().strip()
    body = gzip.compress(b"sku,price,num_in_stock\nSKU-P-0,7.77,3\nSKU-P-2,8.88,1\n")

    with cluster_up(env, tmp_path / "q.log"), web(env, tmp_path / "web.log") as url:
        push = f"{url}/productsync/feeds/erp-stock/push"
        auth = {"Authorization": f"Bearer {token}"}
        answer = requests.post(push, data=body, headers=auth, timeout=30)
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        assert (
            answer.json()["url"]
            == f"https://shop.localhost/admin/productsync/syncrun/{run_id}/change/"
        )
        run = wait_for(lambda: finished(run_id), 90, "the pushed run", tmp_path / "q.log")

        wrong = requests.post(push, data=body, headers={"Authorization": "Bearer nope"}, timeout=30)
        missing = requests.post(push, data=body, timeout=30)
        unknown = requests.post(f"{url}/productsync/feeds/nope/push", data=body, headers=auth)
        disabled = requests.post(f"{url}/productsync/feeds/off/push", data=body, headers=auth)
        large = requests.post(push, data=b"sku,price\n" + b"x" * 5000, headers=auth, timeout=30)
    assert (run.status, run.trigger, run.feed_id, run.updated) == (
        "succeeded",
        "push",
        feed.pk,
        2,
    ), run.error
    assert run.upload and run.partial
    assert str(StockRecord.objects.get(partner_sku="SKU-P-0").price) == "7.77"
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert (unknown.status_code, disabled.status_code) == (404, 404)
    assert large.status_code == 413
    assert SyncRun.objects.filter(trigger="push").count() == 1


def test_a_browser_uploads_a_stock_csv_with_its_partner(env, tmp_path, write_feed, browser):
    from django.contrib.auth import get_user_model

    write_feed([product(f"B-{i}") for i in range(3)], "first.json")
    call_command("sync_products", "--source", str(tmp_path / "first.json"), stdout=StringIO())
    get_user_model().objects.create_superuser("boss", "boss@example.com", "password")
    stock = tmp_path / "stock.csv"
    stock.write_text("sku,price,num_in_stock\nSKU-B-1,5.55,9\n")

    with cluster_up(env, tmp_path / "q.log"), web(env, tmp_path / "web.log") as url:
        wait = WebDriverWait(browser, 60)
        browser.get(url + "/admin/productsync/syncrun/upload/")
        browser.find_element(By.NAME, "username").send_keys("boss")
        browser.find_element(By.NAME, "password").send_keys("password")
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait.until(ec.presence_of_element_located((By.ID, "ps-upload-form")))
        browser.find_element(By.NAME, "file").send_keys(str(stock))
        Select(browser.find_element(By.NAME, "kind")).select_by_value("stock")
        browser.find_element(By.NAME, "action").find_element(
            By.XPATH, "//input[@value='sync']"
        ).click()
        # First without the partner: the form says which field is missing.
        browser.find_element(By.ID, "ps-upload").click()
        error = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".errorlist")))
        form = browser.find_element(By.ID, "ps-upload-form").text
        assert "partner" in error.text and not re.search(r"--[a-z]", form)
        browser.find_element(By.NAME, "file").send_keys(str(stock))
        browser.find_element(By.NAME, "partner").send_keys("Acme Books")
        browser.find_element(By.XPATH, "//input[@value='sync']").click()
        browser.find_element(By.ID, "ps-upload").click()
        wait.until(ec.url_matches(r"/syncrun/\d+/change/"))
        run_id = int(browser.current_url.rstrip("/").split("/")[-2])
        run = wait_for(lambda: finished(run_id), 90, "the uploaded stock file's run")
    assert (run.status, run.partial, run.updated, run.trigger) == ("succeeded", True, 1, "admin")
    record = StockRecord.objects.get(partner_sku="SKU-B-1")
    assert (str(record.price), record.num_in_stock) == ("5.55", 9)
