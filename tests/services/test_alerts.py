"""Alerts of feeds, one per incident: e-mail and a signed webhook received by a real HTTP
server on loopback; "recovered" once; overdue feeds; the run_finished signal."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from productsync import tasks
from productsync.exceptions import SourceError
from productsync.models import Alert, Feed, SyncRun
from productsync.services import feed_run_execute, feeds_overdue_check
from productsync.signals import run_finished
from tests.conftest import product
from tests.httpserver import FeedHandler, feed_server_start, feed_server_stop

SECRET = "s3cret-for-tests"


class HookHandler(FeedHandler):
    """Records each POST (headers, body) and answers with the server's next status."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts.append((dict(self.headers), body))
        status = self.server.statuses.pop(0) if self.server.statuses else 204
        self.send(status)


@pytest.fixture
def hook():
    server = feed_server_start(HookHandler)
    server.posts, server.statuses = [], []
    yield server
    feed_server_stop(server)


@pytest.fixture
def alerting(settings, hook):
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "WEBHOOK_SECRET": SECRET,
        "ALLOW_PRIVATE": ["127.0.0.1"],
        "BASE_URL": "https://shop.localhost",
        "HTTP_BACKOFF": 0,
    }
    settings.ADMINS = [("Ops", "ops@example.com")]


def received(hook) -> list[dict]:
    """The webhook bodies received, each checked against its signature."""
    bodies = []
    for headers, body in hook.posts:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Productsync-Signature"] == expected
        bodies.append(json.loads(body))
    return bodies


def run_feed(feed: Feed) -> SyncRun:
    try:
        run_id = feed_run_execute(feed.pk)
    except SourceError as exc:
        run_id = exc.run_id
    return SyncRun.objects.get(pk=run_id)


def test_one_alert_per_incident_then_one_recovered(db, alerting, hook, tmp_path, write_feed):
    source = tmp_path / "nightly.json"
    feed = Feed.objects.create(
        name="nightly",
        source=str(source),
        alert_emails="team@example.com, buyer@example.com",
        alert_webhook=f"{hook.url}/hook?key=abc",
    )
    first = run_feed(feed)  # the file is not there: the run fails
    assert first.status == "failed"
    assert [m.to for m in mail.outbox] == [["team@example.com", "buyer@example.com"]]
    assert "nightly" in mail.outbox[0].subject and "failed" in mail.outbox[0].subject
    [alert] = received(hook)
    assert alert["feed"] == "nightly" and alert["alert"] == "failed"
    assert (alert["run_id"], alert["status"]) == (first.pk, "failed")
    assert alert["url"] == f"https://shop.localhost/admin/productsync/syncrun/{first.pk}/change/"
    assert "No such file" in alert["error"] or "not" in alert["error"]

    run_feed(feed)  # the same incident: nothing more is sent
    assert len(mail.outbox) == 1 and len(hook.posts) == 1

    write_feed([product("N-1"), product("N-2", title="")], "nightly.json")
    partial = run_feed(feed)  # now a run with a failed item: still the same incident
    assert partial.status == "completed_with_failures" and len(hook.posts) == 1

    write_feed([product("N-1"), product("N-2")], "nightly.json")
    good = run_feed(feed)
    assert good.status == "succeeded"
    assert len(mail.outbox) == 2 and "recovered" in mail.outbox[1].subject
    recovered = received(hook)[1]
    assert (recovered["alert"], recovered["run_id"], recovered["counts"]["items"]) == (
        "recovered",
        good.pk,
        2,
    )
    run_feed(feed)  # healthy and healthy again: nothing
    assert len(mail.outbox) == 2 and len(hook.posts) == 2
    alerts = Alert.objects.filter(feed=feed).order_by("pk")
    assert [(a.kind, a.channel, a.sent) for a in alerts] == [
        ("failed", "email", True),
        ("failed", "webhook", True),
        ("recovered", "email", True),
        ("recovered", "webhook", True),
    ]
    # The webhook's query (where a key may hide) is not recorded.
    assert alerts[1].target == f"{hook.url}/hook"


def test_failed_items_alert_lists_the_first_reasons(db, alerting, hook, write_feed):
    source = write_feed([product("F-1"), product("F-2", title="")], "items.json")
    feed = Feed.objects.create(name="items", source=source, alert_webhook=f"{hook.url}/h")
    run = run_feed(feed)
    assert run.status == "completed_with_failures"
    [alert] = received(hook)
    assert alert["alert"] == "failed_items" and alert["counts"]["failed"] == 1
    assert alert["failures"][0]["upc"] == "F-2" and "title" in alert["failures"][0]["message"]
    # No alert_emails: the site's ADMINS are told.
    assert mail.outbox[0].to == ["ops@example.com"]


def test_a_webhook_to_loopback_needs_allow_private(db, settings, hook, tmp_path):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "HTTP_BACKOFF": 0}
    feed = Feed.objects.create(
        name="private", source=str(tmp_path / "none.json"), alert_webhook=f"{hook.url}/h"
    )
    run_feed(feed)
    assert hook.posts == []
    webhook = Alert.objects.get(channel="webhook")
    assert not webhook.sent and "not a public address" in webhook.error


def test_a_failing_webhook_is_retried_and_recorded(db, alerting, hook, tmp_path):
    hook.statuses = [503, 503, 503, 503]
    feed = Feed.objects.create(
        name="down", source=str(tmp_path / "none.json"), alert_webhook=f"{hook.url}/h"
    )
    run_feed(feed)
    assert len(hook.posts) == 4  # the first try and HTTP_RETRIES (3) retries
    webhook = Alert.objects.get(channel="webhook")
    assert (webhook.sent, webhook.error) == (False, "HTTP 503")


def test_an_overdue_feed_alerts_once(db, alerting, hook, write_feed):
    source = write_feed([product("O-1")], "o.json")
    feed = Feed.objects.create(
        name="supplier",
        source=source,
        alert_webhook=f"{hook.url}/h",
        overdue_after=timedelta(hours=1),
    )
    good = run_feed(feed)
    assert feeds_overdue_check() == []
    later = timezone.now() + timedelta(hours=2)
    assert feeds_overdue_check(now=later) == ["supplier"]
    assert feeds_overdue_check(now=later + timedelta(hours=1)) == []
    [alert] = received(hook)
    assert (alert["alert"], alert["run_id"], alert["overdue_after"]) == ("overdue", good.pk, 3600)
    assert "no successful run" in mail.outbox[0].subject
    assert tasks.feeds_overdue() == []  # the scheduled task: still the same incident
    run_feed(feed)
    assert received(hook)[1]["alert"] == "recovered"


def test_run_finished_is_sent_for_every_run_and_dry_runs_alert_nobody(db, alerting, tmp_path):
    seen = []

    def receiver(sender, run, **kwargs):
        seen.append((sender, run.pk, run.status))

    run_finished.connect(receiver)
    try:
        feed = Feed.objects.create(name="quiet", source=str(tmp_path / "none.json"))
        with pytest.raises(SourceError):
            feed_run_execute(feed.pk, dry_run=True)
    finally:
        run_finished.disconnect(receiver)
    run = SyncRun.objects.get()
    assert seen == [(SyncRun, run.pk, "failed")]
    assert mail.outbox == [] and not Alert.objects.exists()
