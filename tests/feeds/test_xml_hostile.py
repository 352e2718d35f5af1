"""Hostile XML fails cleanly: a document type (external entities, billion laughs), nesting
beyond the bound, text beyond the bounds; nothing is read from disk and no product lands."""

import contextlib
import errno
import os
import threading
import time
import uuid

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.models import SyncFailure, SyncRun

Product = get_model("catalogue", "Product")

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
RSS = '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><title>Shop</title>'
END = "</channel></rss>"


def item(sku: str, description: str = "A product.") -> str:
    return (
        f"<item><g:id>{sku}</g:id><g:title>Product {sku}</g:title>"
        f"<g:description>{description}</g:description><g:price>10.00 USD</g:price>"
        "<g:availability>in_stock</g:availability></item>"
    )


def sync(path) -> SyncRun:
    with contextlib.suppress(SystemExit, Exception):
        call_command("sync_products", "--source", str(path), "--no-progress", "--preset", "google")
    return SyncRun.objects.latest("pk")


def recorded(run: SyncRun) -> str:
    """Everything the run's history holds, as text."""
    failures = SyncFailure.objects.filter(run=run).values_list("raw_payload", "message")
    return " ".join([run.error or "", *run.notes, *(f"{p} {e}" for p, e in failures)])


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text(f"SECRET-{uuid.uuid4()}", encoding="utf-8")
    return path


@pytest.fixture
def watched_fifo(tmp_path):
    """A named pipe and the times anything opened it for reading: a watcher opens its writing
    end whenever a reader waits (closing it at once, so the reader is never stuck)."""
    path = tmp_path / "watched"
    os.mkfifo(path)
    opened, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                opened.append(time.monotonic())
            except OSError as exc:
                assert exc.errno == errno.ENXIO  # no reader: the usual case
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    yield path, opened
    stop.set()
    watcher.join()


@pytest.mark.django_db
def test_an_entity_naming_a_local_file_never_opens_it(tmp_path, watched_fifo):
    path, opened = watched_fifo
    for name, doctype in (
        ("external.xml", f'<!DOCTYPE rss [<!ENTITY leak SYSTEM "file://{path}">]>'),
        ("dtd.xml", f'<!DOCTYPE rss SYSTEM "file://{path}">'),
        ("parameter.xml", f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{path}"> %p;]>'),
    ):
        for padding in ("", f"<!-- {'x' * 100_000} -->"):  # past the prolog's byte check
            feed = tmp_path / name
            text = HEAD + padding + doctype + RSS + item("A", "&leak;") + END
            feed.write_text(text, encoding="utf-8")

            run = sync(feed)

            assert run.status == "failed" and "document type" in run.error, name
    assert opened == []
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_an_external_entity_naming_a_local_file_is_refused_unread(tmp_path, secret):
    feed = tmp_path / "xxe.xml"
    feed.write_text(
        HEAD
        + f'<!DOCTYPE rss [<!ENTITY leak SYSTEM "file://{secret}">]>'
        + RSS
        + item("A", "&leak;")
        + END,
        encoding="utf-8",
    )

    run = sync(feed)

    assert run.status == "failed"
    assert "document type" in run.error
    assert secret.read_text() not in recorded(run)
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_a_document_type_in_utf16_is_refused_at_its_root(tmp_path, secret):
    """A prolog the byte scan cannot read is still refused, by the parser's record of it."""
    feed = tmp_path / "xxe16.xml"
    text = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        + f'<!DOCTYPE rss [<!ENTITY leak SYSTEM "file://{secret}">]>'
        + RSS
        + item("A", "&leak;")
        + END
    )
    feed.write_bytes(text.encode("utf-16"))

    run = sync(feed)

    assert run.status == "failed"
    assert "document type" in run.error
    assert secret.read_text() not in recorded(run)
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_billion_laughs_is_refused(tmp_path):
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    feed = tmp_path / "laughs.xml"
    feed.write_text(
        HEAD + f"<!DOCTYPE rss [{entities}]>" + RSS + item("A", "&lol9;") + END,
        encoding="utf-8",
    )

    run = sync(feed)

    assert run.status == "failed"
    assert "document type" in run.error
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_nesting_100000_deep_is_refused(tmp_path):
    feed = tmp_path / "deep.xml"
    feed.write_text(
        HEAD + RSS + "<item>" + "<a>" * 100_000 + "</a>" * 100_000 + "</item>" + END,
        encoding="utf-8",
    )

    run = sync(feed)

    assert run.status == "failed"
    assert "nests deeper than" in run.error
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_text_beyond_max_text_length_fails_its_item_alone(tmp_path, settings):
    settings.PRODUCTSYNC = {"MAX_TEXT_LENGTH": 1000, "FETCH_IMAGES": False}
    feed = tmp_path / "long-text.xml"
    feed.write_text(
        HEAD + RSS + item("A") + item("LONG", "x" * 5000) + item("B") + END, encoding="utf-8"
    )

    run = sync(feed)

    assert (run.status, run.created, run.failed) == ("completed_with_failures", 2, 1)
    (failure,) = SyncFailure.objects.filter(run=run)
    assert "<g:description> is 5000 characters, longer than" in failure.message
    assert "MAX_TEXT_LENGTH" in failure.message
    assert len(failure.raw_payload) < 100  # the text is not kept
    keys = Product.objects.values_list("productsync_state__sync_key", flat=True)
    assert set(keys) == {"A", "B"}


@pytest.mark.django_db
def test_an_item_beyond_max_item_bytes_fails_alone_without_being_held(tmp_path, settings):
    settings.PRODUCTSYNC = {"MAX_ITEM_BYTES": 100_000, "FETCH_IMAGES": False}
    many = "".join(
        f"<g:additional_image_link>/{n}.jpg</g:additional_image_link>" for n in range(9000)
    )
    feed = tmp_path / "long-item.xml"
    feed.write_text(
        HEAD
        + RSS
        + item("A")
        + item("LONG").replace("</item>", many + "</item>")
        + item("B")
        + END,
        encoding="utf-8",
    )

    run = sync(feed)

    assert (run.status, run.created, run.failed) == ("completed_with_failures", 2, 1)
    (failure,) = SyncFailure.objects.filter(run=run)
    assert "the item is" in failure.message and "MAX_ITEM_BYTES" in failure.message


@pytest.mark.django_db
def test_a_text_node_beyond_the_parsers_bound_fails_the_run_cleanly(tmp_path):
    feed = tmp_path / "huge-text.xml"
    with open(feed, "w", encoding="utf-8") as out:
        out.write(HEAD + RSS + item("A") + "<item><g:id>HUGE</g:id><g:description>")
        for _ in range(12):
            out.write("y" * 1024 * 1024)
        out.write("</g:description></item>" + END)

    run = sync(feed)

    assert run.status == "failed"
    assert "longer than the XML reader's bound" in run.error
