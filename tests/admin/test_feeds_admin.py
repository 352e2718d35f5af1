"""The admin's Feeds page as a shop team's console, through the test client: the list with
last run, next run and overdue mark; actions; the feed's page with its runs and alerts; the
upload page's kind; permissions and private hosts."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from productsync.exceptions import SourceError
from productsync.models import Alert, Feed, SyncRun
from productsync.services import feed_run_execute, feed_token_valid
from tests.conftest import product


def staff(django_user_model, username: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(
        username=username, email=f"{username}@example.com", password=None, is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def feeds_url(name: str = "changelist", *args) -> str:
    return reverse(f"admin:productsync_feed_{name}", args=args)


@pytest.fixture
def two_feeds(db, write_feed, tmp_path):
    pim = Feed.objects.create(
        name="pim",
        source="https://user:pa55word@pim.localhost/feed.json?token=T0KEN",
        schedule="0 2 * * *",
    )
    stock = Feed.objects.create(
        name="acme",
        kind="stock",
        partner="Acme Books",
        source=str(tmp_path / "acme.csv"),
        overdue_after=timedelta(hours=1),
        created_at=timezone.now() - timedelta(days=2),
    )
    return pim, stock


def test_the_feeds_page_lists_kind_source_last_run_next_run_and_overdue(
    admin_client, two_feeds, write_feed, django_assert_max_num_queries
):
    pim, stock = two_feeds
    Feed.objects.filter(pk=pim.pk).update(source=write_feed([product("A-1")], "pim.json"))
    run = SyncRun.objects.get(pk=feed_run_execute(pim.pk))
    with django_assert_max_num_queries(12):
        html = admin_client.get(feeds_url()).content.decode()
    assert "pim" in html and "acme" in html
    assert "stock file of one partner" in html
    assert f'href="/admin/productsync/syncrun/{run.pk}/change/"' in html
    assert "1 items: 1 created, 0 updated, 0 failed" in html
    next_run = Schedule.objects.get(name="productsync.feed.pim").next_run
    assert timezone.localtime(next_run).strftime("%Y-%m-%d %H:%M") in html
    assert html.count("ps-overdue") == 1  # acme: no success for more than its hour


def test_credentials_in_a_source_url_are_never_shown(admin_client, two_feeds):
    pim, _ = two_feeds
    html = admin_client.get(feeds_url()).content.decode()
    assert "pa55word" not in html and "T0KEN" not in html
    assert "https://pim.localhost/feed.json" in html


def test_the_feed_page_shows_its_recent_runs_and_alerts(admin_client, two_feeds, settings):
    _, stock = two_feeds
    settings.ADMINS = [("Ops", "ops@example.com")]
    with pytest.raises(SourceError):
        feed_run_execute(stock.pk)  # the stock file is not there yet
    run = SyncRun.objects.get()
    html = admin_client.get(feeds_url("change", stock.pk)).content.decode()
    assert 'id="ps-feed-runs"' in html and f"run {run.pk}</a>" in html
    assert 'id="ps-feed-alerts"' in html and "ops@example.com" in html
    run_page = admin_client.get(reverse("admin:productsync_syncrun_change", args=[run.pk]))
    page = run_page.content.decode()
    assert 'id="ps-run-alerts"' in page and 'id="ps-feed"' in page
    assert len(mail.outbox) == 1 and Alert.objects.filter(run=run).count() == 1


def test_the_run_list_filters_by_feed(admin_client, two_feeds, write_feed):
    pim, stock = two_feeds
    Feed.objects.filter(pk=pim.pk).update(source=write_feed([product("A-1")], "pim.json"))
    pim_run = feed_run_execute(pim.pk)
    with pytest.raises(SourceError):
        feed_run_execute(stock.pk)
    html = admin_client.get(
        reverse("admin:productsync_syncrun_changelist") + f"?feed__id__exact={pim.pk}"
    ).content.decode()
    ids = re.findall(r"/admin/productsync/syncrun/(\d+)/change/", html)
    assert set(ids) == {str(pim_run)}


def test_enable_disable_and_a_new_push_token(admin_client, two_feeds):
    pim, stock = two_feeds
    action = {"_selected_action": [pim.pk], "action": "disable"}
    admin_client.post(feeds_url(), action)
    assert not Feed.objects.get(pk=pim.pk).enabled
    assert not Schedule.objects.filter(name="productsync.feed.pim").exists()
    admin_client.post(feeds_url(), {**action, "action": "enable"})
    assert Schedule.objects.filter(name="productsync.feed.pim").exists()
    response = admin_client.post(
        feeds_url(), {"_selected_action": [stock.pk], "action": "new_push_token"}, follow=True
    )
    html = response.content.decode()
    token = re.search(r"push token (\S+) \(shown this once", html).group(1)
    assert feed_token_valid(Feed.objects.get(pk=stock.pk), token)
    assert "/productsync/feeds/acme/push" in html


def test_sync_now_queues_the_feed_and_needs_run_sync(two_feeds, django_user_model):
    pim, _ = two_feeds
    viewer = staff(django_user_model, "viewer", "view_feed")
    action = {"_selected_action": [pim.pk], "action": "sync_now"}
    response = viewer.post(feeds_url(), action)
    assert OrmQ.objects.count() == 0  # the action is not offered: nothing queued
    runner = staff(django_user_model, "runner", "view_feed", "run_sync", "view_syncrun")
    response = runner.post(feeds_url(), action, follow=True)
    # No cluster is running in this test: the page says so and nothing is queued.
    html = response.content.decode()
    assert "Feed pim: not started: no django-q2 cluster is running" in html, html[
        html.find("messagelist") :
    ][:600]
    assert OrmQ.objects.count() == 0


def test_editing_feeds_needs_the_change_permission(two_feeds, django_user_model):
    pim, _ = two_feeds
    viewer = staff(django_user_model, "viewer", "view_feed")
    data = {"name": "pim", "kind": "catalogue", "source": "/srv/x.json", "enabled": "on"}
    assert viewer.post(feeds_url("change", pim.pk), data).status_code == 403
    assert Feed.objects.get(pk=pim.pk).source.startswith("https://")


def test_admin_urls_reach_private_hosts_only_through_allow_private(admin_client, settings):
    data = {
        "name": "internal",
        "kind": "catalogue",
        "source": "http://127.0.0.1:9/feed.json",
        "alert_webhook": "http://localhost:9/hook",
        "enabled": "on",
    }
    response = admin_client.post(feeds_url("add"), data)
    html = response.content.decode()
    assert html.count("PRODUCTSYNC[&#x27;ALLOW_PRIVATE&#x27;]") == 2
    assert not Feed.objects.exists()
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "ALLOW_PRIVATE": ["127.0.0.0/8", "::1"]}
    response = admin_client.post(feeds_url("add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Feed.objects.get().source == "http://127.0.0.1:9/feed.json"


def test_the_upload_form_asks_for_the_kind_and_speaks_of_its_fields(admin_client, tmp_path):
    html = admin_client.get(reverse("admin:productsync_syncrun_upload")).content.decode()
    assert 'name="kind"' in html and "Stock file of one partner" in html
    stock = tmp_path / "stock.csv"
    stock.write_text("sku,price,num_in_stock\nX,1.00,1\n")
    with open(stock, "rb") as f:
        response = admin_client.post(
            reverse("admin:productsync_syncrun_upload"),
            {"file": f, "kind": "stock", "action": "preview"},
        )
    html = response.content.decode()
    assert "A stock file needs its partner." in html
    assert not re.search(r"--[a-z]", html.split('id="ps-upload-form"')[1])
