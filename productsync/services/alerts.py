"""Alerts about feeds, one per incident: a run that failed or ended with failed items, or a
feed overdue, opens an incident and is told once (e-mail, signed webhook); the next
successful run closes it and tells "recovered". Every alert sent or failed is recorded."""

import hashlib
import hmac
import json
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Max, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from productsync.conf import app_settings
from productsync.feed_models import emails_split
from productsync.http import FetchError, GuardedSession, webhook_guard
from productsync.models import Alert, Feed, SyncRun
from productsync.records import one_line
from productsync.signals import run_finished

logger = logging.getLogger(__name__)

Status = SyncRun.Status
# A run's ending, as the incident it opens (None: it closes one).
INCIDENT_OF = {
    Status.FAILED: Feed.Incident.FAILED,
    Status.ABORTED: Feed.Incident.FAILED,
    Status.COMPLETED_WITH_FAILURES: Feed.Incident.FAILED_ITEMS,
    Status.SUCCEEDED: None,
}
# Failed items named in an alert; the run page has them all.
FAILURES_SHOWN = 5
SIGNATURE_HEADER = "X-Productsync-Signature"


def run_ended(run: SyncRun) -> None:
    """What follows a run's end, in the process that ended it: the run_finished signal, then
    the feed's alerts. Never raises: the run is recorded already."""
    for receiver, result in run_finished.send_robust(sender=SyncRun, run=run):
        if isinstance(result, Exception):
            logger.error("run_finished receiver %r failed: %s", receiver, result)
    if run.feed_id is None or run.dry_run or run.status not in INCIDENT_OF:
        return
    try:
        run_alerts_judge(run)
    except Exception:
        logger.exception("alerts of run %s failed", run.pk)


def run_alerts_judge(run: SyncRun) -> Alert.Kind | None:
    """Open the feed's incident (a bad ending while it is healthy) or close it (a success
    while one is open), and send the alert that says so; return its kind, or None when
    nothing changed. Conditional updates: two processes ending runs at once alert once."""
    incident = INCIDENT_OF[run.status]
    feeds = Feed.objects.filter(pk=run.feed_id)
    if incident is not None:
        opened = feeds.filter(incident="").update(incident=incident, incident_since=timezone.now())
        kind = Alert.Kind(incident) if opened else None
    else:
        closed = feeds.exclude(incident="").update(incident="", incident_since=None)
        kind = Alert.Kind.RECOVERED if closed else None
    if kind is not None:
        alerts_send(Feed.objects.get(pk=run.feed_id), kind, run)
    return kind


def feeds_overdue_check(now=None) -> list[str]:
    """Open an "overdue" incident, and alert, for each enabled healthy feed with
    overdue_after whose last successful run (else its creation) is longer ago than that;
    return their names. Run by a django-q2 schedule."""
    now = now or timezone.now()
    feeds = Feed.objects.filter(enabled=True, incident="", overdue_after__isnull=False)
    last = feeds.annotate(
        last_success=Max(
            "run_set__finished_at",
            filter=Q(run_set__status=Status.SUCCEEDED, run_set__dry_run=False),
        )
    )
    overdue = []
    for feed in last:
        since = feed.last_success or feed.created_at
        if now - since <= feed.overdue_after:
            continue
        opened = Feed.objects.filter(pk=feed.pk, incident="").update(
            incident=Feed.Incident.OVERDUE, incident_since=now
        )
        if opened:
            overdue.append(feed.name)
            alerts_send(feed, Alert.Kind.OVERDUE, feed.run_set.filter(dry_run=False).first())
    return overdue


def run_page_url(run: SyncRun | None) -> str:
    """The run's admin page: absolute under PRODUCTSYNC['BASE_URL'], else its path."""
    if run is None:
        return ""
    try:
        path = reverse("admin:productsync_syncrun_change", args=[run.pk])
    except NoReverseMatch:
        return ""
    return (app_settings.BASE_URL or "").rstrip("/") + path


def alert_payload(feed: Feed, kind: str, run: SyncRun | None) -> dict:
    """What an alert says: the feed, the alert's kind, the run's id, status, counts, error,
    first failure reasons and page."""
    payload = {"feed": feed.name, "alert": kind, "run_id": None, "status": None}
    if kind == Alert.Kind.OVERDUE:
        payload["overdue_after"] = int(feed.overdue_after.total_seconds())
    if run is None:
        return payload
    failures = run.failure_set.order_by("position")[:FAILURES_SHOWN]
    payload.update(
        run_id=run.pk,
        status=run.status,
        counts={name: getattr(run, name) for name in SyncRun.COUNTERS},
        error=run.error,
        failures=[
            {"position": f.position, "upc": f.upc, "message": one_line(f.message)[:500]}
            for f in failures
        ],
        url=run_page_url(run),
    )
    return payload


def alert_text(payload: dict) -> tuple[str, str]:
    """An alert's e-mail subject and body."""
    titles = {
        "failed": "run failed",
        "failed_items": "run ended with failed items",
        "overdue": "no successful run for too long",
        "recovered": "recovered",
    }
    subject = f"productsync feed {payload['feed']}: {titles[payload['alert']]}"
    lines = [subject, ""]
    if payload.get("run_id"):
        lines.append(f"Run {payload['run_id']}: {payload['status']}")
        counts = payload["counts"]
        lines.append(
            ", ".join(f"{counts[k]} {k}" for k in ("items", "created", "updated", "failed"))
        )
    if payload.get("error"):
        lines.append(f"Error: {payload['error']}")
    for failure in payload.get("failures", []):
        lines.append(f"Item {failure['position']} ({failure['upc'] or '-'}): {failure['message']}")
    if payload.get("overdue_after"):
        lines.append(f"Overdue after {timedelta(seconds=payload['overdue_after'])}.")
    if payload.get("url"):
        lines += ["", payload["url"]]
    return subject, "\n".join(lines) + "\n"


def webhook_signature(body: bytes) -> str | None:
    """The X-Productsync-Signature of a body: sha256=<HMAC-SHA256 under WEBHOOK_SECRET>."""
    secret = app_settings.WEBHOOK_SECRET
    if not secret:
        return None
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def alerts_send(feed: Feed, kind: str, run: SyncRun | None) -> list[Alert]:
    """Send one alert by e-mail (the feed's alert_emails, else ADMINS) and by its webhook,
    recording each as sent or failed."""
    payload = alert_payload(feed, kind, run)
    recorded = []
    recipients = emails_split(feed.alert_emails) or [email for _, email in settings.ADMINS]
    if recipients:
        recorded.append(_email_send(feed, kind, run, payload, recipients))
    if feed.alert_webhook:
        recorded.append(_webhook_send(feed, kind, run, payload))
    return recorded


def _email_send(feed, kind, run, payload, recipients) -> Alert:
    subject, body = alert_text(payload)
    alert = Alert(feed=feed, run=run, kind=kind, channel=Alert.Channel.EMAIL)
    alert.target = ", ".join(recipients)
    try:
        send_mail(subject, body, None, recipients)
        alert.sent = True
    except Exception as exc:  # any mail backend's failure: recorded, not raised
        alert.error = one_line(exc) or type(exc).__name__
    alert.save()
    return alert


def _webhook_send(feed, kind, run, payload) -> Alert:
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json"}
    signature = webhook_signature(body)
    if signature:
        headers[SIGNATURE_HEADER] = signature
    alert = Alert(feed=feed, run=run, kind=kind, channel=Alert.Channel.WEBHOOK)
    parts = urlsplit(feed.alert_webhook)
    alert.target = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
    session = GuardedSession(webhook_guard())
    try:
        status = session.post(feed.alert_webhook, body, headers)
        alert.sent = 200 <= status < 300
        alert.error = "" if alert.sent else f"HTTP {status}"
    except (FetchError, OSError) as exc:
        alert.error = one_line(exc)
    finally:
        session.close()
    alert.save()
    return alert
