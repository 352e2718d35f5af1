"""Images: fetched from a real HTTP server on 127.0.0.1 after the batch committed, stored
once per content, not fetched again when unchanged, a failure is a warning retried next run."""

import io
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from oscar.core.loading import get_model
from PIL import Image

from productsync.services import sync_run_execute
from productsync.writer.images import FOLDER
from tests.conftest import product

Product = get_model("catalogue", "Product")
ProductImage = get_model("catalogue", "ProductImage")


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def image_server(tmp_path, settings):
    """Serves tmp_path/www on 127.0.0.1 (allow-listed: loopback is refused by default);
    records each request's path and whether the product named by its ?upc= was already
    committed, seen through the server thread's own connection."""
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "IMAGE_ALLOW_PRIVATE": ["127.0.0.1"]}
    root = tmp_path / "www"
    root.mkdir()
    seen: list[tuple[str, bool]] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            url = urlsplit(self.path)
            upc = parse_qs(url.query).get("upc", [""])[0]
            try:
                committed = Product.objects.filter(upc=upc).exists()
            finally:
                connection.close()
            seen.append((url.path, committed))
            super().do_GET()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{server.server_port}", seen=seen)
    server.shutdown()
    server.server_close()
    thread.join()


def stored_files(media: Path) -> list[str]:
    return sorted(p.name for p in (media / FOLDER).rglob("*") if p.is_file())


def images_of(upc: str) -> list[tuple[int, str]]:
    return [
        (image.display_order, image.original.name)
        for image in Product.objects.get(upc=upc).images.all()
    ]


@pytest.mark.django_db(transaction=True)
def test_images_fetched_after_commit_deduplicated_and_retried(
    image_server, write_feed, tmp_path, settings
):
    media = tmp_path / "media"
    settings.MEDIA_ROOT = str(media)
    www = image_server.root
    (www / "red.png").write_bytes(png("red"))
    (www / "blue.png").write_bytes(png("blue"))
    (tmp_path / "pics").mkdir()  # the feed is tmp_path/feed.json: relative paths start here
    (tmp_path / "pics" / "green.png").write_bytes(png("green"))

    def url(name: str, upc: str) -> str:
        return f"{image_server.url}/{name}?upc={upc}"

    missing = url("missing.png", "A")
    feed = [
        product("A", images=[url("red.png", "A"), missing, url("blue.png", "A")]),
        product("B", images=[url("red.png", "B")]),
        product("C", images=["pics/green.png", "../outside.png"]),
    ]
    source = write_feed(feed)

    run = sync_run_execute(source)

    assert (run.status, run.created, run.warnings) == ("succeeded", 3, 2)
    assert run.notes == [
        f"image {missing!r} of product 'A' not fetched (not available at that address); the "
        "next run tries again",
        "image '../outside.png' of product 'C' not fetched (a relative image path must stay "
        "inside the feed's folder); the next run tries again",
    ]
    # Every image was requested once the product's batch had committed.
    assert image_server.seen and all(committed for _, committed in image_server.seen)
    a = images_of("A")
    assert [order for order, _ in a] == [0, 2]
    red = a[0][1]
    assert Product.objects.get(upc="A").primary_image().original.name == red
    assert images_of("B") == [(0, red)]  # same bytes, one stored file
    assert len(images_of("C")) == 1
    assert len(stored_files(media)) == 3  # red, blue, green

    # Unchanged: only the failed image is asked for again.
    requests_before = len(image_server.seen)
    run = sync_run_execute(source)
    assert (run.unchanged, run.warnings) == (3, 2)
    assert [path for path, _ in image_server.seen[requests_before:]] == ["/missing.png"]

    (www / "missing.png").write_bytes(png("yellow"))
    feed[2]["images"] = ["pics/green.png"]
    write_feed(feed)
    run = sync_run_execute(source)
    assert (run.warnings, run.notes) == (0, [])
    assert [order for order, _ in images_of("A")] == [0, 1, 2]
    assert len(stored_files(media)) == 4

    # A keeps only blue: its red row goes (B still uses the file), yellow's file goes too.
    feed[0]["images"] = [url("blue.png", "A")]
    write_feed(feed)
    requests_before = len(image_server.seen)
    sync_run_execute(source)
    assert image_server.seen[requests_before:] == []  # blue was fetched before
    assert [order for order, _ in images_of("A")] == [0]
    assert images_of("B") == [(0, red)]
    assert len(stored_files(media)) == 3


def test_a_dry_run_fetches_no_image(db, image_server, write_feed, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    (image_server.root / "red.png").write_bytes(png("red"))
    feed = [product("A", images=[f"{image_server.url}/red.png?upc=A"])]

    run = sync_run_execute(write_feed(feed), dry_run=True)

    assert (run.created, run.warnings) == (1, 0)
    assert image_server.seen == []
    assert not ProductImage.objects.exists()
