"""Bad input at the edges: each unusable source or argument gets one line and exit status 2,
broken items get their own failure, and feed text is escaped wherever it is shown."""

import gzip
import json
import os
import socket

import pytest
from django.core.management import execute_from_command_line
from oscar.core.loading import get_model

from productsync.models import SyncFailure, SyncRun
from tests.conftest import FIXTURES, product, run_command

Product = get_model("catalogue", "Product")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """manage.py sync_products in this process, exactly as the command line runs it."""
    try:
        execute_from_command_line(["manage.py", "sync_products", "--no-progress", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str, fragment: str) -> None:
    assert "Traceback" not in err and "usage:" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], err


def good(n: int, prefix: str = "G") -> list[dict]:
    return [product(f"{prefix}{i}") for i in range(n)]


@pytest.fixture
def unreadable_as_anyone(tmp_path):
    """A path that even root cannot read as a file: a Unix socket."""
    path = tmp_path / "feed.json"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    yield str(path)
    server.close()


UNUSABLE = {
    "empty": (b"", "the feed is empty"),
    "whitespace": (b" \n\t\n", "the feed is empty"),
    "object": (b'{"upc": "1"}', "the top level of the feed is an object"),
    "binary": (bytes(range(256)) * 8, "the feed is binary"),
    "broken gzip": (gzip.compress(json.dumps(good(5)).encode())[:30], "gzip stream is corrupt"),
    "utf16": (json.dumps(good(2)).encode("utf-16"), "UTF-16-encoded"),
    "garbage line": (b"x" * 2_000_000, "not a JSON array"),
    "broken first item": (b'[{"upc": "1",, }]', "malformed JSON after item 0"),
}


# One test for many cases: each command run closes the database connection, as manage.py
# does, so these tests are transactional, and PostgreSQL pays a flush per test.
@pytest.mark.django_db(transaction=True)
def test_unusable_sources_are_one_line_and_exit_2(capsys, tmp_path, unreadable_as_anyone):
    cases = {
        str(tmp_path): "is a directory",
        str(tmp_path / "missing.json"): "cannot open: No such file or directory",
        unreadable_as_anyone: "cannot open",
        "/proc/self/mem": "cannot read the feed",  # opens, then every read fails, for root too
    }
    for name, (content, message) in UNUSABLE.items():
        for suffix in (".json", ".jsonl"):
            if suffix == ".jsonl" and name in ("object", "broken first item", "garbage line"):
                continue  # one bad line of JSON Lines is one failed item: see the mixed test
            path = tmp_path / f"{name}{suffix}"
            path.write_bytes(content)
            cases[str(path)] = message
    for source, message in cases.items():
        code, _, err = cli(capsys, "--source", source)
        assert code == 2, source
        assert_one_line(err, message)
    assert set(SyncRun.objects.values_list("status", flat=True)) == {SyncRun.Status.FAILED}
    assert SyncRun.objects.count() == len(cases)
    assert not Product.objects.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: see the socket, /proc cases")
@pytest.mark.django_db(transaction=True)
def test_unreadable_permissions(capsys, tmp_path):
    path = tmp_path / "feed.json"
    path.write_text("[]")
    path.chmod(0)
    code, _, err = cli(capsys, "--source", str(path))
    assert code == 2
    assert_one_line(err, "Permission denied")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-size", "0"], "must be at least 1, got 0"),
        (["--batch-size", "-5"], "must be at least 1, got -5"),
        (["--batch-size", "abc"], "expected a whole number, got 'abc'"),
        (["--batch-size", "9" * 30], "must be at most 10000"),
        (["--limit", "-1"], "must be at least 0"),
        (["--batch-size"], "expected one argument"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(capsys, args, message):
    code, _, err = cli(capsys, *args)
    assert code == 2
    assert_one_line(err, message)


@pytest.mark.django_db(transaction=True)
def test_real_process_exit_statuses(tmp_path, write_feed):
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    result = run_command("sync_products", "--source", str(empty))
    assert result.returncode == 2
    assert_one_line(result.stderr, "the feed is empty")

    result = run_command("sync_products", "--batch-size", "abc")
    assert result.returncode == 2
    assert_one_line(result.stderr, "expected a whole number")

    # A pipe can be read only once: it is not pre-counted, and every item arrives.
    feed = json.dumps(good(20, "P"))
    result = run_command("sync_products", "--source", "/dev/stdin", "--json", input=feed)
    summary = json.loads(result.stdout.splitlines()[-1])
    assert (result.returncode, summary["created"]) == (0, 20), result.stderr


@pytest.mark.django_db(transaction=True)
def test_odd_but_valid_feeds_sync_whole(capsys, tmp_path):
    for suffix, text in [
        (".json", json.dumps(good(3, "J"))),
        (".jsonl", "\n".join(json.dumps(i) for i in good(3, "L"))),
    ]:
        path = tmp_path / f"bom{suffix}"
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        code, out, err = cli(capsys, "--source", str(path))
        assert (code, err) == (0, "")
    assert Product.objects.count() == 6

    big = product("BIG", description="<p>" + "x" * 5_000_000 + "</p>")
    path = tmp_path / "big.json"
    path.write_text(json.dumps([big] + good(3)))  # one line of 5 MB
    code, _, err = cli(capsys, "--source", str(path))
    assert (code, err) == (0, "")
    assert len(Product.objects.get(upc="BIG").description) == 5_000_007

    # A limit beyond any feed is no limit.
    code, _, err = cli(capsys, "--source", str(path), "--limit", "9" * 30)
    assert (code, err) == (0, "")


@pytest.mark.django_db(transaction=True)
def test_bad_bytes_fail_their_line_or_stop_a_json_array_after_whole_batches(capsys, tmp_path):
    lines = [json.dumps(i).encode() for i in good(4, "M")]
    lines[1] = '{"upc": "M1", "title": "Café"}'.encode("latin-1")
    lines[2] = b"\x00\x00 stray bytes"
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines))
    code, out, err = cli(capsys, "--source", str(path))
    assert code == 1 and err == ""
    assert "item 1 (upc -): line 2: not valid JSON: 'utf-8' codec can't decode byte 0xe9" in out
    failures = dict(SyncFailure.objects.values_list("position", "raw_payload"))
    assert failures == {1: '{"upc": "M1", "title": "Caf\\xe9"}', 2: "\\x00\\x00 stray bytes"}
    assert set(Product.objects.values_list("upc", flat=True)) == {"M0", "M3"}

    path = tmp_path / "big.jsonl"
    path.write_bytes(b"y" * 5_000_000 + b"\n" + json.dumps(product("OK")).encode())
    code, out, _ = cli(capsys, "--source", str(path))
    assert code == 1
    assert len(out) < 2000  # the failure is reported, not the 5 MB line
    assert "item 0 (upc -): line 1: not valid JSON" in out

    text = json.dumps(good(30, "A")).encode()
    cut = text.index(b'"A20"')
    path = tmp_path / "mixed.json"
    path.write_bytes(text[:cut] + '"Café"'.encode("latin-1") + text[cut + 5 :])
    code, out, err = cli(capsys, "--source", str(path), "--batch-size", "10")
    assert code == 1
    assert "Error: feed broke at item 20: malformed JSON after item 20" in out
    assert SyncRun.objects.order_by("pk").last().status == SyncRun.Status.FAILED
    assert Product.objects.filter(upc__startswith="A").count() == 20

    # Two arrays back to back: the second is not silently ignored.
    path.write_text(json.dumps(good(5, "B")) + json.dumps(good(5, "C")))
    code, out, err = cli(capsys, "--source", str(path))
    assert code == 1
    assert "Error: feed broke at item 5: malformed JSON after item 5: parse error: trailing" in out


@pytest.mark.django_db(transaction=True)
def test_feed_text_is_escaped_in_the_summary_and_kept_as_json(capsys, tmp_path):
    evil = "\x1b[2J\x1b]0;pwned\x07\u202e"
    items = [
        {"upc": evil, "product_class": "Book"},  # no title: fails, shown with its UPC
        {**product("E1"), evil: "unknown key"},  # noted as an unknown key
        product("E2", title=f"Title {evil}"),  # stored as it is, never shown
    ]
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(items))
    code, out, err = cli(capsys, "--source", str(path), "--json")
    assert code == 1 and err == ""
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "item 0 (upc \\x1b[2J\\x1b]0;pwned\\x07\\u202e): title: Field required" in out
    assert "Note: unknown keys ignored: \\x1b[2J" in out
    assert json.loads(out.splitlines()[-1])["failed"] == 1
    failure = SyncFailure.objects.get()
    assert json.loads(failure.raw_payload) == items[0]
    assert Product.objects.get(upc="E2").title == f"Title {evil}"


@pytest.mark.django_db
def test_shipped_bad_rows_keep_raw_payloads_as_json():
    from productsync.services import sync_run_execute

    run = sync_run_execute(str(FIXTURES / "products_with_errors.json"), batch_size=15)
    raw = json.loads((FIXTURES / "products_with_errors.json").read_text())
    for failure in run.failure_set.all():
        assert json.loads(failure.raw_payload) == raw[failure.position]
