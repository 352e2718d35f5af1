"""Images named by a feed, as an attacker who controls the feed would name them, against real
servers on 127.0.0.1: internal addresses refused before any connection (on every redirect
hop), refusals stored as no map of the network, bombs and trickling servers a warning on
their item while the run succeeds, the heartbeat fresh while images are fetched."""

import io
import ipaddress
import json
import struct
import sys
import time
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from oscar.core.loading import get_model
from PIL import Image

from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.conftest import product
from tests.httpserver import FeedHandler, trickle

pytestmark = pytest.mark.django_db(transaction=True)

Product = get_model("catalogue", "Product")

# Every address this process connects a socket to during these tests (sys.audit
# "socket.connect"): proof that a refused address was never tried. A connection off loopback
# is also stopped here, before it is made, so that even a broken guard sends nothing out.
_connects: list | None = None


def _loopback(address) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket
    try:
        return ipaddress.ip_address(address[0].split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _connects is not None:
        _connects.append(args[1])
        if not _loopback(args[1]):
            raise PermissionError(f"the tests send nothing off loopback ({args[1]!r})")


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def connects():
    global _connects
    _connects = []
    try:
        yield _connects
    finally:
        _connects = None


def png(colour: str = "red", size: tuple[int, int] = (4, 4)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of width x height pixels, all black: 50 MB of pixels in ~50 KB."""
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


class ImageHandler(FeedHandler):
    def do_GET(self) -> None:
        server = self.server
        url = urlsplit(self.path)
        server.hits[url.path] += 1
        server.seen.append((self.path, dict(self.headers), time.monotonic()))
        if url.path == "/redir":
            self.send(302, b"", {"Location": parse_qs(url.query)["to"][0]})
        elif url.path in server.files:
            body, kind = server.files[url.path]
            self.send(200, body, {"Content-Type": kind})
        elif url.path == "/trickle.png":
            self._trickle(png("green"))
        elif url.path == "/busy.png":
            self.send(503, b"", {"Retry-After": "21600"})
        elif url.path == "/soon.png" and server.hits[url.path] == 1:
            self.send(503, b"", {"Retry-After": "1"})
        elif url.path == "/soon.png":
            self.send(200, png("yellow"), {"Content-Type": "image/png"})
        else:
            self.send(404, b"")

    def _trickle(self, body: bytes) -> None:
        """The image a byte every 0.2 s, each well within a read timeout, as long as the
        client listens; records the run's heartbeat as the database had it at the start."""
        try:
            server = self.server
            server.heartbeats.append(SyncRun.objects.values_list("heartbeat_at", flat=True)[0])
        finally:
            connection.close()
        server.trickled.append(trickle(self, body, "image/png"))


@pytest.fixture
def images(http_server, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    server = http_server(ImageHandler)
    server.heartbeats, server.trickled = [], []
    server.files.update(
        {
            "/red.png": (png("red"), "image/png"),
            "/blue.png": (png("blue"), "image/png"),
            "/bomb.png": (png_bomb(), "image/png"),
            "/wide.png": (png("white", (300, 200)), "image/png"),
            "/broken.png": (png("red")[:40] + b"garbage" * 10, "image/png"),
        }
    )
    server.local = server.url.replace("127.0.0.1", "localhost")
    return server


def allow(settings, *entries: str) -> None:
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "IMAGE_ALLOW_PRIVATE": list(entries)}


def stored(upc: str) -> int:
    return Product.objects.get(upc=upc).images.count()


def unavailable(ref: str, upc: str) -> str:
    return (
        f"image {ref!r} of product {upc!r} not fetched (not available at that address); "
        "the next run tries again"
    )


# Addresses that are not public, all on this machine (tests never name another address):
# loopback by other numbers and forms than the test server's, and the unspecified address.
INTERNAL = [
    "http://127.0.0.2/a.png",
    "http://127.1.2.3/latest/meta-data/iam.png",
    "http://[::1]/a.png",
    "http://0.0.0.0:6379/",
    "http://[::ffff:127.0.0.1]/a.png",
]


def test_internal_addresses_are_refused_before_any_connection(
    images, write_feed, connects, settings
):
    allow(settings, "localhost")  # the test server, by name only: 127.0.0.1 stays refused
    refs = [
        images.url + "/red.png",  # loopback
        *INTERNAL,
        *(f"{images.local}/redir?to={target}" for target in INTERNAL),
        f"{images.local}/redir?to={images.url}/blue.png",  # a hop back to loopback by address
    ]
    run = sync_run_execute(write_feed([product("A", images=refs), product("B")]))

    assert (run.status, run.created, run.warnings) == ("succeeded", 2, len(refs))
    assert run.notes == [unavailable(ref, "A") for ref in refs]
    assert stored("A") == 0
    # The allowed server was asked for the redirects only, never for what they pointed at.
    assert [path.split("?")[0] for path, _, _ in images.seen] == ["/redir"] * 6
    assert connects, "the audit hook saw no connection at all"
    assert all(_loopback(address) for address in connects), connects


def test_refused_missing_and_unreachable_images_read_the_same(images, write_feed, settings):
    allow(settings, "localhost")
    closed = images.local.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens
    refs = [images.url + "/red.png", images.local + "/missing.png", closed + "/a.png"]

    run = sync_run_execute(write_feed([product("A", images=refs)]))

    assert run.notes == [unavailable(ref, "A") for ref in refs]


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "localhost"])
def test_an_allow_listed_internal_host_serves_images(images, write_feed, settings, entry):
    allow(settings, entry)
    host = images.local if entry == "localhost" else images.url
    refs = [host + "/red.png", f"{host}/redir?to={host}/blue.png"]

    run = sync_run_execute(write_feed([product("A", images=refs)]))

    assert (run.status, run.warnings, run.notes) == ("succeeded", 0, [])
    assert stored("A") == 2


def test_the_host_of_an_http_source_is_trusted_for_its_images(images):
    """The operator chose the feed's URL (it may be internal): its relative image paths, and
    absolute ones on the same host, are fetched; another internal host still is not (here
    127.0.0.1 by address, while the feed is read from localhost by name)."""
    refused = images.url + "/red.png"
    feed = [product("A", images=["red.png", images.local + "/blue.png", refused])]
    images.files["/feed.json"] = (json.dumps(feed).encode(), "application/json")

    run = sync_run_execute(images.local + "/feed.json")

    assert (run.status, run.created) == ("succeeded", 1)
    assert run.notes == [unavailable(refused, "A")]
    assert stored("A") == 2


def test_a_decompression_bomb_is_a_warning_and_the_run_succeeds(images, write_feed, settings):
    allow(settings, "127.0.0.1")
    assert len(images.files["/bomb.png"][0]) < 100_000
    bomb, red = images.url + "/bomb.png", images.url + "/red.png"
    source = write_feed([product("A", images=[bomb, red]), product("B", images=[red])])

    for _ in range(2):  # and the next run does not stop at it either
        run = sync_run_execute(source, full=True)
        assert (run.status, run.failed, run.warnings) == ("succeeded", 0, 1)
        assert run.notes[0].startswith(f"image {bomb!r} of product 'A' not fetched (")
        assert "20000x20000 pixels" in run.notes[0] or "too many pixels" in run.notes[0]
        assert (stored("A"), stored("B")) == (1, 1)


def test_the_pixel_limit_is_checked_before_decoding(images, write_feed, settings):
    allow(settings, "127.0.0.1")
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "IMAGE_MAX_PIXELS": 50_000}
    wide, red = images.url + "/wide.png", images.url + "/red.png"

    run = sync_run_execute(write_feed([product("A", images=[wide, red])]))

    assert run.status == "succeeded"
    assert run.notes == [
        f"image {wide!r} of product 'A' not fetched (300x200 pixels, more than "
        "PRODUCTSYNC['IMAGE_MAX_PIXELS'] (50000)); the next run tries again"
    ]
    assert stored("A") == 1


def test_a_broken_image_is_a_warning_on_its_item(images, write_feed, settings):
    allow(settings, "127.0.0.1")
    broken = images.url + "/broken.png"

    run = sync_run_execute(write_feed([product("A", images=[broken])]))

    assert (run.status, run.warnings) == ("succeeded", 1)
    assert run.notes[0].startswith(f"image {broken!r} of product 'A' not fetched (not an image")


def test_a_trickling_image_server_is_cut_at_the_deadline_and_the_heartbeat_stays_fresh(
    images, write_feed, settings
):
    allow(settings, "127.0.0.1")
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "IMAGE_TIMEOUT": 1}
    refs = [f"{images.url}/trickle.png?n={n}" for n in range(3)]

    run = sync_run_execute(write_feed([product("A", images=refs)]))

    assert (run.status, run.warnings) == ("succeeded", 3)
    assert run.notes == [unavailable(ref, "A") for ref in refs]
    # Each was cut at the deadline long before its last byte (every byte came in time).
    wait = time.monotonic() + 10
    while len(images.trickled) < 3 and time.monotonic() < wait:
        time.sleep(0.05)
    assert len(images.trickled) == 3
    assert all(sent < len(png("green")) // 2 for sent in images.trickled)
    # The heartbeat moved on while the images were fetched, after the batch had saved it.
    first, _, last = images.heartbeats
    assert last > first
    assert SyncRun.objects.get().heartbeat_at >= last


def test_retry_after_is_honoured_up_to_the_cap(images, write_feed, settings):
    allow(settings, "127.0.0.1")
    busy, soon = images.url + "/busy.png", images.url + "/soon.png"

    run = sync_run_execute(write_feed([product("A", images=[busy, soon])]))

    assert run.notes == [unavailable(busy, "A")]
    assert stored("A") == 1
    assert (images.hits["/busy.png"], images.hits["/soon.png"]) == (1, 2)


def test_only_the_sources_own_origin_is_trusted_not_its_other_ports(images, http_server):
    """A feed from 127.0.0.1:A names images on 127.0.0.1:B and localhost:B (an image, a page
    that is no image) and on a closed port: none is asked for, and each reads the same as
    the others, so the notes map no open port."""
    other = http_server(ImageHandler)
    other.files.update({"/red.png": (png("red"), "image/png"), "/page.html": (b"<p>", "text/html")})
    local = other.url.replace("127.0.0.1", "localhost")
    closed = images.url.rsplit(":", 1)[0] + ":9"
    refs = [other.url + "/red.png", local + "/red.png", other.url + "/page.html", closed + "/a.png"]
    feed = [product("A", images=["red.png", *refs])]
    images.files["/feed.json"] = (json.dumps(feed).encode(), "application/json")

    run = sync_run_execute(images.url + "/feed.json")

    assert (run.status, run.created) == ("succeeded", 1)
    assert run.notes == [unavailable(ref, "A") for ref in refs]
    assert stored("A") == 1  # the feed's own relative image
    assert not other.hits
