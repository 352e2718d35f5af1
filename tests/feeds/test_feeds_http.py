"""HTTP sources against a real server on 127.0.0.1: retries, timeouts, gzip, 304, breaks."""

import csv
import gzip
import io
import json
import logging
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from productsync.exceptions import SourceError
from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.catalogue import catalogue_clear, catalogue_snapshot, demo_csv_rows, reading_peak
from tests.conftest import FIXTURES, product, run_command
from tests.httpserver import FeedHandler, FeedServer

DEMO = (FIXTURES / "products.json").read_bytes()
SMALL = json.dumps([product("S1"), product("S2"), product("S3")]).encode()
TOKEN = "Bearer s3cret-token"


def demo_csv_bytes() -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(demo_csv_rows())
    return out.getvalue().encode()


class Handler(FeedHandler):
    def route_products_json(self, hit: int) -> None:
        server: FeedServer = self.server
        validators = {"ETag": server.etag, "Last-Modified": "Sat, 28 Nov 2026 10:00:00 GMT"}
        if self.headers.get("If-None-Match") == server.etag:
            self.send(304, headers=validators)
        else:
            self.send(200, server.body, {"Content-Type": "application/json", **validators})

    def route_export(self, hit: int) -> None:
        # No extension: the format comes from the Content-Type.
        self.send(200, demo_csv_bytes(), {"Content-Type": "text/csv; charset=utf-8"})

    def route_gzipped(self, hit: int) -> None:
        self.send(
            200,
            gzip.compress(DEMO),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    def route_products_csv_gz(self, hit: int) -> None:
        self.send(200, gzip.compress(demo_csv_bytes()), {"Content-Type": "application/gzip"})

    def route_flaky(self, hit: int) -> None:
        if hit == 1:
            self.send(500, b"oops", {"Content-Type": "text/plain"})
        else:
            self.send(200, DEMO, {"Content-Type": "application/json"})

    def route_busy(self, hit: int) -> None:
        if hit == 1:
            self.send(429, b"slow down", {"Retry-After": "1"})
        else:
            self.send(200, DEMO, {"Content-Type": "application/json"})

    def route_down(self, hit: int) -> None:
        self.send(503, b"maintenance")

    def route_slow(self, hit: int) -> None:
        time.sleep(3)
        self.send(200, DEMO, {"Content-Type": "application/json"})

    def route_cut(self, hit: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(DEMO)))
        self.end_headers()
        self.wfile.write(DEMO[:70_000])
        self.wfile.flush()
        self.close_connection = True

    def route_garbage(self, hit: int) -> None:
        body = DEMO[:70_000] + b"<html>Internal error</html>"
        self.send(200, body, {"Content-Type": "application/json"})

    def route_html(self, hit: int) -> None:
        self.send(200, b"<html>login</html>", {"Content-Type": "application/json"})

    def route_missing(self, hit: int) -> None:
        self.send(404, b"not here")

    def route_private_json(self, hit: int) -> None:
        if self.headers.get("Authorization") != TOKEN:
            self.send(401, b"who are you")
        else:
            self.send(200, DEMO, {"Content-Type": "application/json"})

    def route_large_jsonl(self, hit: int) -> None:
        # Streamed without a length, generated line by line.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Connection", "close")
        self.end_headers()
        for n in range(10_000):
            line = (
                f'{{"upc": "L{n}", "title": "Large {n}", "product_class": "Book", '
                f'"description": "<p>{"x" * 400}</p>"}}\n'
            )
            self.wfile.write(line.encode())
        self.close_connection = True


@pytest.fixture
def server(http_server):
    httpd = http_server(Handler)
    httpd.body = DEMO
    return httpd


_JSON_STATE: dict = {}


@pytest.fixture
def json_state(db):
    """The catalogue the local JSON feed produces (computed once, then the catalogue is
    emptied again)."""
    if not _JSON_STATE:
        run = sync_run_execute(str(FIXTURES / "products.json"))
        assert run.created == 194
        _JSON_STATE.update(catalogue_snapshot())
        run.delete()
        catalogue_clear()
    return _JSON_STATE


@pytest.mark.parametrize("path", ["/products.json", "/export", "/gzipped", "/products.csv.gz"])
@pytest.mark.django_db
def test_http_feeds_round_trip_the_demo_catalogue(server, json_state, path):
    run = sync_run_execute(server.url + path)

    assert (run.status, run.items, run.created) == ("succeeded", 194, 194), run.error
    assert run.total_items is None  # one request: no counting pass
    assert catalogue_snapshot() == json_state


@pytest.mark.django_db
def test_an_unchanged_feed_costs_one_request_and_succeeds_with_a_note(server):
    url = server.url + "/products.json"
    server.body = SMALL
    first = sync_run_execute(url)
    assert (first.status, first.http_etag) == ("succeeded", '"v1"')

    second = sync_run_execute(url)

    assert (second.status, second.items, second.batches) == ("succeeded", 0, 0)
    assert second.notes == ["the source is unchanged since the last successful run (HTTP 304)"]
    _, headers, _ = server.seen[-1]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Sat, 28 Nov 2026 10:00:00 GMT"
    assert server.hits["/products.json"] == 2

    full = sync_run_execute(url, full=True)  # no validators sent: the body comes again
    assert (full.items, full.unchanged) == (second.items + first.items, first.items)
    _, headers, _ = server.seen[-1]
    assert "If-None-Match" not in headers and "If-Modified-Since" not in headers

    server.etag, server.body = '"v2"', SMALL.replace(b"10.00", b"11.00", 1)
    third = sync_run_execute(url)

    assert (third.status, third.updated, third.unchanged) == ("succeeded", 1, 2)
    assert third.http_etag == '"v2"'


@pytest.mark.django_db
def test_a_dry_run_or_a_limited_run_is_not_the_baseline_of_the_next(server):
    url = server.url + "/products.json"
    server.body = SMALL
    sync_run_execute(url, dry_run=True)
    sync_run_execute(url, limit=1)

    run = sync_run_execute(url)

    assert (run.status, run.created) == ("succeeded", 2)
    assert [h for _, h, _ in server.seen if "If-None-Match" in h] == []


@pytest.mark.django_db
def test_a_500_is_retried(server):
    run = sync_run_execute(server.url + "/flaky")

    assert (run.status, run.created) == ("succeeded", 194)
    assert server.hits["/flaky"] == 2


@pytest.mark.django_db
def test_a_429_is_retried_after_the_time_the_server_asked(server):
    run = sync_run_execute(server.url + "/busy")

    assert (run.status, run.created) == ("succeeded", 194)
    (_, _, first), (_, _, second) = [s for s in server.seen if s[0] == "/busy"]
    assert second - first >= 1.0


@pytest.mark.django_db
def test_a_server_still_failing_after_the_retries_is_a_source_error(server):
    with pytest.raises(SourceError, match="/down: HTTP 503 Service Unavailable after 2 retries"):
        sync_run_execute(server.url + "/down")

    assert server.hits["/down"] == 3
    run = SyncRun.objects.get()
    assert run.status == "failed" and "503" in run.error


@pytest.mark.django_db
def test_a_server_too_slow_to_answer_times_out(server, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "HTTP_RETRIES": 1}

    with pytest.raises(SourceError, match="Read timed out"):
        sync_run_execute(server.url + "/slow")

    assert server.hits["/slow"] == 2


@pytest.mark.django_db
def test_an_unreachable_host_is_a_source_error(server):
    probe = FeedServer(Handler)
    port = probe.server_address[1]
    probe.server_close()

    with pytest.raises(SourceError, match="Connection refused|Failed to establish"):
        sync_run_execute(f"http://127.0.0.1:{port}/products.json")

    assert SyncRun.objects.get().status == "failed"


@pytest.mark.django_db
def test_a_connection_cut_mid_body_fails_the_run_and_keeps_earlier_batches(server):
    run = sync_run_execute(server.url + "/cut")

    assert run.status == "failed"
    assert "the connection broke after" in run.error and "bytes of the body" in run.error
    assert run.batches >= 1 and run.created == run.items > 0
    assert catalogue_snapshot()["products"].keys() >= {"9781001047294"}


@pytest.mark.django_db
def test_garbage_after_a_valid_prefix_fails_the_run_and_keeps_earlier_batches(server):
    run = sync_run_execute(server.url + "/garbage")

    assert run.status == "failed"
    assert run.error.startswith(f"feed broke at item {run.items}: malformed JSON after item")
    assert run.created == run.items > 0


@pytest.mark.django_db
def test_a_body_that_is_not_the_declared_format_fails_the_run(server):
    # Nothing of it can be read, so the source is unusable (exit 2), and the run is recorded.
    with pytest.raises(SourceError, match="the top level of the feed is not a JSON array"):
        sync_run_execute(server.url + "/html")
    run = SyncRun.objects.get()
    assert (run.status, run.items) == ("failed", 0)
    assert "the top level of the feed is not a JSON array: expected a JSON array" in run.error


@pytest.mark.django_db
def test_headers_from_settings_are_sent_but_never_printed_nor_stored(server, settings):
    url = server.url + "/private.json"
    with pytest.raises(CommandError, match="HTTP 401 Unauthorized") as refused:
        call_command("sync_products", "--source", url, stdout=io.StringIO())
    assert refused.value.returncode == 2

    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "HTTP_HEADERS": {server.url: {"Authorization": TOKEN}},
    }
    out = io.StringIO()
    call_command("sync_products", "--source", url, "--json", stdout=out, stderr=out)

    assert '"status": "succeeded"' in out.getvalue()
    assert "s3cret" not in out.getvalue()
    assert server.seen[-1][1]["Authorization"] == TOKEN
    for run in SyncRun.objects.all():
        stored = " ".join(str(getattr(run, f.attname)) for f in SyncRun._meta.fields)
        assert "s3cret" not in stored


def test_headers_go_only_to_urls_under_their_prefix(settings):
    from productsync.http import http_headers

    settings.PRODUCTSYNC = {
        "HTTP_HEADERS": {
            "https://erp.localhost/": {"Authorization": "a", "X-Shop": "1"},
            "https://erp.localhost/feeds/": {"Authorization": "b"},
        }
    }

    assert http_headers("https://erp.localhost/feeds/all.csv") == {
        "Authorization": "b",
        "X-Shop": "1",
    }
    assert http_headers("https://erp.localhost.evil.localhost/") == {}


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_2_on_a_missing_feed(server):
    result = run_command("sync_products", "--source", server.url + "/missing")

    assert result.returncode == 2
    assert result.stderr.strip() == f"CommandError: {server.url}/missing: HTTP 404 Not Found"
    assert SyncRun.objects.get().status == "failed"


@pytest.mark.django_db(transaction=True)
def test_the_command_error_names_the_feed_url_without_its_token(server):
    result = run_command("sync_products", "--source", server.url + "/missing?token=abc123secret")

    assert result.returncode == 2
    shown = f"{server.url}/missing?token=***: HTTP 404 Not Found"
    assert result.stderr.strip() == f"CommandError: {shown}"
    assert "abc123secret" not in result.stdout + result.stderr


def test_memory_stays_flat_for_a_large_streamed_feed(server):
    reading_peak(server.url + "/gzipped")  # the first GET also imports and caches modules
    count, peak = reading_peak(server.url + "/large.jsonl")

    # 4.5 MB streamed; the peak is a few buffers (about 0.3 MB), not the body.
    assert count == 10_000
    assert peak < 1_000_000, peak


@pytest.mark.parametrize(
    ("key", "value", "error_id"),
    [
        ("HTTP_TIMEOUT", 5, "productsync.E005"),
        ("HTTP_TIMEOUT", (5, 0), "productsync.E005"),
        ("HTTP_RETRIES", -1, "productsync.E006"),
        ("HTTP_BACKOFF", "fast", "productsync.E007"),
        ("HTTP_HEADERS", {"erp.localhost": {"Authorization": "x"}}, "productsync.E008"),
        ("HTTP_HEADERS", {"https://erp.localhost/": {"Authorization": 1}}, "productsync.E008"),
    ],
)
def test_http_settings_are_checked(settings, key, value, error_id):
    from productsync.checks import check_settings

    settings.PRODUCTSYNC = {key: value}

    assert [e.id for e in check_settings(None)] == [error_id]


def test_default_http_settings_pass_the_checks(settings):
    from productsync.checks import check_settings

    settings.PRODUCTSYNC = {"HTTP_HEADERS": {"https://erp.localhost/": {"Authorization": "x"}}}

    assert check_settings(None) == []


@pytest.mark.django_db
def test_the_log_names_the_feed_url_without_its_credentials(server, caplog):
    path = "/products.json?token=abc123secret&page=1"
    server.files[path] = (DEMO, "application/json")
    url = server.url.replace("://", "://reader@") + path
    with caplog.at_level(logging.INFO, logger="productsync"):
        run = sync_run_execute(url)
    assert run.status == "succeeded"
    shown = f"{server.url}/products.json?token=***&page=1"
    assert f"{shown}: HTTP 200, application/json" in caplog.messages
    logged = "\n".join(caplog.messages)
    assert "abc123secret" not in logged and "reader@" not in logged
