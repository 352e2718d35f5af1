"""Bounded inputs: a feed line, JSON item, CSV row or text field over its bound fails that
item alone with a one-line reason; the items around it are written, and memory stays flat."""

import gzip
import json
import os
import subprocess
import sys

import pytest
from oscar.core.loading import get_model

from productsync.models import SyncFailure, SyncRun
from tests.conftest import ROOT, product, subprocess_env

Product = get_model("catalogue", "Product")

BOUND = 64 * 1024


@pytest.fixture
def small_bound(settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "MAX_ITEM_BYTES": BOUND}


def sync(path) -> SyncRun:
    from django.core.management import call_command

    call_command("sync_products", "--source", str(path), "--no-progress", "--batch-size", "2")
    return SyncRun.objects.latest("pk")


def assert_only_failure(run: SyncRun, position: int, words: str, upcs: set[str]) -> None:
    assert run.status == SyncRun.Status.COMPLETED_WITH_FAILURES, run.error
    assert run.items == run.created + run.failed
    assert set(Product.objects.values_list("upc", flat=True)) == upcs
    [failure] = SyncFailure.objects.filter(run=run)
    assert failure.position == position
    assert words in failure.message
    assert len(failure.raw_payload) < 2000  # the first bytes, not the whole line


@pytest.mark.django_db(transaction=True)
def test_jsonl_line_over_the_bound_fails_alone(tmp_path, small_bound):
    path = tmp_path / "feed.jsonl"
    long_item = json.dumps(product("LONG", description="x" * (2 * BOUND)))
    lines = [json.dumps(product("A")), long_item, json.dumps(product("B"))]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit):
        sync(path)
    run = SyncRun.objects.get()
    assert_only_failure(run, 1, "line 2: the line is", {"A", "B"})
    assert "longer than PRODUCTSYNC['MAX_ITEM_BYTES'] (65536)" in run.failure_set.get().message


@pytest.mark.django_db(transaction=True)
def test_gzipped_jsonl_with_one_huge_line_fails_that_line(tmp_path, small_bound):
    path = tmp_path / "feed.jsonl.gz"
    with gzip.open(path, "wb") as out:
        out.write((json.dumps(product("A")) + "\n").encode())
        for _ in range(64):  # 64 MiB of one line, a few kilobytes compressed
            out.write(b"y" * (1024 * 1024))
        out.write(b"\n" + json.dumps(product("B")).encode() + b"\n")
    with pytest.raises(SystemExit):
        sync(path)
    assert_only_failure(SyncRun.objects.get(), 1, "is 67108865 bytes", {"A", "B"})


@pytest.mark.django_db(transaction=True)
def test_json_array_item_over_the_bound_fails_alone(tmp_path, small_bound):
    path = tmp_path / "feed.json"
    items = [product("A"), product("LONG", title="t" * (3 * BOUND)), product("B")]
    path.write_text(json.dumps(items))
    with pytest.raises(SystemExit):
        sync(path)
    assert_only_failure(SyncRun.objects.get(), 1, "the item is", {"A", "B"})


@pytest.mark.django_db(transaction=True)
def test_json_array_string_over_the_bound_in_a_nested_item(tmp_path, small_bound):
    # A long string split by the reader's chunks, with escapes, deep in an item.
    path = tmp_path / "feed.json"
    deep = {"a": [{"b": ['\\"' * BOUND]}]}
    items = [product("A"), product("LONG", attributes=deep), product("B", title='x"]},[{')]
    path.write_text(json.dumps(items))
    with pytest.raises(SystemExit):
        sync(path)
    assert_only_failure(SyncRun.objects.get(), 1, "longer than", {"A", "B"})
    assert Product.objects.get(upc="B").title == 'x"]},[{'


@pytest.mark.django_db(transaction=True)
def test_csv_cell_over_131072_characters_is_read_whole(tmp_path):
    # Python's csv module refuses cells over 131,072 characters by default: the run used to
    # end there, losing the row read before it.
    path = tmp_path / "feed.csv"
    long = "d" * 200_000
    path.write_text(
        "upc,title,product_class,description\n"
        f'A,Title A,Book,short\nLONG,Title L,Book,"{long}"\nB,Title B,Book,short\n'
    )
    run = sync(path)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(Product.objects.get(upc="LONG").description) == 200_000


@pytest.mark.django_db(transaction=True)
def test_csv_row_over_the_bound_fails_alone_even_across_lines(tmp_path, small_bound):
    path = tmp_path / "feed.csv"
    # A quoted cell over the bound, holding line breaks, quotes and delimiters.
    long = 'ab,"" c\n' * (BOUND // 4)  # 8 characters, twice the bound
    path.write_text(
        "upc,title,product_class,description\n"
        f'A,Title A,Book,"two\nlines"\nLONG,Title L,Book,"{long}"\nB,Title B,Book,plain\n'
        + "z" * (2 * BOUND)  # an unquoted physical line over the bound, last
        + "\nC,Title C,Book,c\n"
    )
    with pytest.raises(SystemExit):
        sync(path)
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.COMPLETED_WITH_FAILURES
    assert set(Product.objects.values_list("upc", flat=True)) == {"A", "B", "C"}
    assert Product.objects.get(upc="A").description == "two\nlines"
    failures = list(SyncFailure.objects.filter(run=run).order_by("position"))
    assert [f.position for f in failures] == [1, 3]
    assert all("the row is" in f.message and "characters" in f.message for f in failures)
    assert failures[0].message.startswith("line 4: ")


@pytest.mark.django_db(transaction=True)
def test_text_field_over_max_text_length_fails_naming_the_field(tmp_path, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "MAX_TEXT_LENGTH": 5000}
    path = tmp_path / "feed.json"
    path.write_text(json.dumps([product("A"), product("LONG", description="x" * 5001)]))
    with pytest.raises(SystemExit):
        sync(path)
    [failure] = SyncFailure.objects.all()
    assert failure.field == "description"
    assert "5001 characters, longer than PRODUCTSYNC['MAX_TEXT_LENGTH'] (5000)" in failure.message


def sync_process(path) -> tuple[int, str, int]:
    """Run sync_products on path in a real process: (exit status, output, peak RSS in KiB)."""
    out_path = path.with_suffix(".out")
    with open(out_path, "w") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "sync_products", "--source", str(path)]
            + ["--json", "--no-progress", "--full"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
            cwd=ROOT,
        )
        _, status, usage = os.wait4(process.pid, 0)  # this process's own peak
    return os.waitstatus_to_exitcode(status), out_path.read_text(), usage.ru_maxrss


@pytest.mark.django_db(transaction=True)
def test_long_json_string_fails_its_item_in_flat_memory(tmp_path):
    """A 200 MB JSON string (default bounds) in a real process: the item fails, its
    neighbours are written, and the process's peak memory is that of the same feed with a
    short string, give or take far less than the string (ijson's C parser alone would hold it
    and take time growing with the square of its length)."""

    def feed(name: str, megabytes: int):
        path = tmp_path / name
        with open(path, "wb") as out:
            out.write(b"[" + json.dumps(product("A")).encode() + b', {"upc": "LONG", "title": "')
            for _ in range(megabytes):
                out.write(b"s" * (1024 * 1024))
            out.write(b'"}, ' + json.dumps(product("B")).encode() + b"]")
        return path

    status, output, baseline = sync_process(feed("short.json", 0))
    assert status == 1, output  # an empty title fails too
    status, output, peak = sync_process(feed("long.json", 200))
    assert status == 1, output
    summary = json.loads(output.splitlines()[-1])
    assert (summary["items"], summary["failed"]) == (3, 1)
    assert "longer than PRODUCTSYNC['MAX_ITEM_BYTES']" in output
    assert peak < baseline + 100 * 1024, f"peak RSS {peak} KiB, {baseline} KiB with no string"
