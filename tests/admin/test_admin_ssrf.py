"""A URL typed into the admin's import is fetched by the worker only from a public address
(or a host the operator allowed as private), on every redirect hop: loopback by address,
by IPv6 and by name is refused with one message, and the server never sees a request."""

import pytest

from productsync.exceptions import SourceError
from productsync.models import SyncRun
from tests.admin.test_admin_import import run_queued, url
from tests.httpserver import FeedHandler

pytestmark = pytest.mark.django_db

SECRET = b'{"upc": "S", "title": "internal secret"}\n'
REFUSED = "refused, not a public address"


class RedirectingHandler(FeedHandler):
    def route_go(self, hits: int) -> None:
        port = self.server.server_address[1]
        self.send(302, b"", {"Location": f"http://127.0.0.1:{port}/secret.jsonl"})


def preview(client, target: str) -> None:
    form = {"url": target, "batch_size": "2", "action": "preview"}
    assert client.post(url("upload"), form).status_code == 302


@pytest.mark.parametrize(
    "target",
    ["{base}/secret.jsonl", "http://[::1]:{port}/x", "http://localhost:{port}/secret.jsonl"],
)
def test_a_loopback_url_is_refused_and_never_fetched(runner, http_server, target):
    httpd = http_server()
    httpd.files["/secret.jsonl"] = (SECRET, "application/x-ndjson")
    port = httpd.server_address[1]

    preview(runner, target.format(base=httpd.url, port=port))

    with pytest.raises(SourceError, match=REFUSED):
        run_queued()
    assert not httpd.hits
    assert not SyncRun.objects.exists()


def test_a_redirect_to_loopback_is_refused_at_its_hop(runner, http_server, settings):
    # "localhost", allowed by name, stands in for a public host; 127.0.0.1 is not allowed.
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "IMAGE_ALLOW_PRIVATE": ["localhost"]}
    httpd = http_server(RedirectingHandler)
    httpd.files["/secret.jsonl"] = (SECRET, "application/x-ndjson")

    preview(runner, httpd.url.replace("127.0.0.1", "localhost") + "/go")

    with pytest.raises(SourceError, match=REFUSED):
        run_queued()
    assert list(httpd.hits) == ["/go"]
    assert not SyncRun.objects.exists()
