"""Feeds over HTTP as an attacker who controls a feed server would try them, on 127.0.0.1:
secrets do not follow a redirect off their prefix, a trickling server cannot hold a run,
a long Retry-After is not waited for, a redirect off http(s) goes nowhere."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import checks

from productsync.exceptions import SourceError
from productsync.http import http_headers
from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.conftest import product
from tests.httpserver import FeedHandler, trickle

FEED = json.dumps([product("R1"), product("R2")]).encode()
KEY, TOKEN = "k-5ecret", "Bearer t-5ecret"


class Handler(FeedHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        server = self.server
        server.hits[url.path] += 1
        server.seen.append((self.path, dict(self.headers), time.monotonic()))
        if url.path == "/redir":
            self.send(302, b"", {"Location": parse_qs(url.query)["to"][0]})
        elif url.path.endswith("feed.json"):
            self.send(200, FEED, {"Content-Type": "application/json"})
        elif url.path == "/trickle.json":
            self._trickle()
        elif url.path == "/unavailable":
            self.send(503, b"later", {"Retry-After": "21600"})
        else:
            self.send(404, b"")

    def _trickle(self) -> None:
        """The feed one byte at a time, 0.2 s apart, as long as the client listens."""
        self.server.trickled = trickle(self, FEED, "application/json")


def secrets_seen(server) -> list[tuple[str, str | None, str | None]]:
    return [
        (path, headers.get("X-Api-Key"), headers.get("Authorization"))
        for path, headers, _ in server.seen
    ]


@pytest.fixture
def servers(http_server, settings):
    """Two feed servers; the first one's prefix has the secret headers."""
    first, second = http_server(Handler), http_server(Handler)
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "HTTP_HEADERS": {first.url + "/": {"X-Api-Key": KEY, "Authorization": TOKEN}},
    }
    return first, second


@pytest.mark.django_db
def test_secret_headers_are_not_sent_across_a_redirect_to_another_host(servers):
    first, second = servers
    port = urlsplit(first.url).port
    targets = [
        second.url + "/feed.json",  # another port
        f"http://localhost:{port}/feed.json",  # the same server under another name
    ]
    for target in targets:
        run = sync_run_execute(f"{first.url}/redir?to={target}")
        assert (run.status, run.created + run.unchanged) == ("succeeded", 2)

    assert secrets_seen(second) == [("/feed.json", None, None)]
    assert secrets_seen(first) == [
        (f"/redir?to={targets[0]}", KEY, TOKEN),
        (f"/redir?to={targets[1]}", KEY, TOKEN),
        ("/feed.json", None, None),  # reached as localhost: not under the prefix
    ]


@pytest.mark.django_db
def test_secret_headers_follow_a_redirect_only_while_it_stays_under_the_prefix(servers, settings):
    first, _ = servers
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "HTTP_HEADERS": {first.url + "/redir": {"X-Api-Key": KEY}},
    }
    # Each hop gets its own headers: on, off, and on again when a hop comes back.
    chain = f"{first.url}/redir?to={first.url}/redir%3Fto%3D{first.url}/other/feed.json"
    run = sync_run_execute(chain)

    assert run.status == "succeeded"
    assert [(path.split("?")[0], key) for path, key, _ in secrets_seen(first)] == [
        ("/redir", KEY),
        ("/redir", KEY),
        ("/other/feed.json", None),
    ]


def test_a_prefix_covers_its_host_and_port_only(settings):
    settings.PRODUCTSYNC = {"HTTP_HEADERS": {"https://erp.localhost": {"X-Api-Key": KEY}}}

    assert http_headers("https://erp.localhost/feeds/all.csv") == {"X-Api-Key": KEY}
    assert http_headers("https://ERP.localhost./x") == {"X-Api-Key": KEY}
    for url in (
        "https://erp.localhost.evil.localhost/",
        "https://erp.localhost:8443/",
        "http://erp.localhost/",
        "https://erp.localhost@evil.localhost/",
        "https://evil.localhost/https://erp.localhost/",
    ):
        assert http_headers(url) == {}, url


@pytest.mark.django_db
def test_a_redirect_to_a_file_url_is_refused(servers):
    first, _ = servers
    with pytest.raises(SourceError, match="redirected to a URL that is not http"):
        sync_run_execute(f"{first.url}/redir?to=file:///etc/passwd")
    assert SyncRun.objects.get().status == "failed"


@pytest.mark.django_db
def test_a_trickling_feed_server_cannot_hold_the_run_past_the_deadline(servers, settings):
    first, _ = servers
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "HTTP_DEADLINE": 1}

    with pytest.raises(SourceError, match="took longer than 1 s"):
        sync_run_execute(first.url + "/trickle.json")

    assert SyncRun.objects.get().status == "failed"
    # Each byte came well within the read timeout; the deadline cut the connection anyway.
    deadline = time.monotonic() + 10
    while not hasattr(first, "trickled") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.trickled < len(FEED) // 2


@pytest.mark.django_db
def test_a_retry_after_longer_than_the_cap_is_not_waited_for(servers):
    first, _ = servers

    with pytest.raises(SourceError, match="HTTP 503 Service Unavailable"):
        sync_run_execute(first.url + "/unavailable")

    assert first.hits["/unavailable"] == 1


@pytest.mark.parametrize(
    ("key", "value", "error_id"),
    [
        ("HTTP_DEADLINE", 0, "productsync.E171"),
        ("HTTP_DEADLINE", "1h", "productsync.E171"),
        ("HTTP_RETRY_AFTER_MAX", -1, "productsync.E171"),
        ("IMAGE_MAX_PIXELS", 0, "productsync.E172"),
        ("IMAGE_ALLOW_PRIVATE", "127.0.0.0/8", "productsync.E173"),
        ("IMAGE_ALLOW_PRIVATE", [""], "productsync.E173"),
        ("SANITISE_HTML", "yes", "productsync.E174"),
    ],
)
def test_guard_settings_are_checked(settings, key, value, error_id):
    settings.PRODUCTSYNC = {key: value}
    assert error_id in [e.id for e in checks.run_checks(tags=["productsync"])]
