"""sync_products as a user runs it: output, --json, exit codes, one-line errors."""

import json

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.models import SyncRun
from tests.conftest import FIXTURES, product, run_command

Product = get_model("catalogue", "Product")


@pytest.mark.django_db(transaction=True)
def test_default_run_prints_a_line_per_batch_and_a_summary():
    result = run_command("sync_products", "--batch-size", "15")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "Batch 1/13: 15 created, 0 updated, 0 unchanged, 0 repaired, 0 failed ("
    )
    assert lines[12].startswith("Batch 13/13: 14 created")
    run = SyncRun.objects.get()
    assert lines[-1].startswith(
        f"Run {run.pk} succeeded: 194 items, 194 created, 0 updated, 0 unchanged, 0 repaired, "
        "0 failed, 0 hidden; "
        "13 batches, 0 failed batches;"
    )
    assert result.stderr == ""
    assert Product.objects.count() == 194


@pytest.mark.django_db(transaction=True)
def test_json_summary_and_exit_status_1_for_a_partial_run():
    result = run_command(
        "sync_products", "--source", str(FIXTURES / "products_with_errors.json"), "--json"
    )
    assert result.returncode == 1
    summary = json.loads(result.stdout.splitlines()[-1])
    run = SyncRun.objects.get()
    assert summary["run_id"] == run.pk
    assert summary["status"] == "completed_with_failures"
    assert (summary["items"], summary["created"], summary["failed"]) == (40, 35, 5)
    assert set(summary) >= {
        "run_id",
        "status",
        "items",
        "created",
        "updated",
        "unchanged",
        "failed",
        "batches",
        "failed_batches",
        "duration_s",
    }
    assert "item 3 (upc ERR-0003): title: Field required" in result.stdout


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["--batch-size", "-5"], "argument --batch-size: must be at least 1, got -5"),
        (["--batch-size", "abc"], "argument --batch-size: expected a whole number, got 'abc'"),
        (["--limit", "-1"], "argument --limit: must be at least 0, got -1"),
        (["--source", "/nonexistent/feed.json"], "cannot open: No such file or directory"),
        (["--source", "/tmp"], "is a directory"),
    ],
)
def test_unusable_arguments_exit_2_with_one_line(args, message):
    result = run_command("sync_products", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not SyncRun.objects.filter(status="running").exists()


@pytest.mark.django_db(transaction=True)
def test_a_truncated_feed_exits_1_naming_the_position(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps([product("1"), product("2")])[:-30], encoding="utf-8")
    result = run_command("sync_products", "--source", str(path), "--json")
    assert result.returncode == 1
    assert "Error: feed broke at item 1" in result.stdout
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "failed"
    assert Product.objects.filter(upc="1").exists()


@pytest.mark.django_db
def test_control_characters_from_the_feed_are_escaped_in_the_terminal(write_feed, capsys):
    feed = write_feed([{"upc": "evil\x1b[2J", "title": ""}])
    with pytest.raises(SystemExit) as exit_info:
        call_command("sync_products", "--source", feed)
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "upc evil\\x1b[2J" in out


@pytest.mark.django_db
def test_dry_run_is_said_in_the_summary(write_feed, capsys):
    call_command("sync_products", "--source", write_feed([product("1")]), "--dry-run")
    out = capsys.readouterr().out
    assert "succeeded (dry run, nothing kept): 1 item, 1 created" in out
    assert "1 batch, 0 failed batches" in out
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_an_unchanged_file_is_said_and_full_reads_it_anyway(write_feed, capsys):
    feed = write_feed([product("1"), product("2")])
    call_command("sync_products", "--source", feed)
    capsys.readouterr()
    call_command("sync_products", "--source", feed)
    out = capsys.readouterr().out
    assert "Note: the feed file is unchanged since run" in out and ": 0 items" in out
    call_command("sync_products", "--source", feed, "--full")
    assert "2 items, 0 created, 0 updated, 2 unchanged" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_on_a_terminal_a_live_progress_bar_is_shown():
    import fcntl
    import os
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        result = run_command(
            "sync_products", "--limit", "30", stdout=terminal, stderr=terminal, capture=False
        )
        os.close(terminal)
        terminal = None
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        if terminal is not None:
            os.close(terminal)
        os.close(controller)
    assert result.returncode == 0
    text = output.decode()
    assert "30/30" in text and "items/s" in text  # tqdm's bar: done/total and rate
    assert "Batch 1/" not in text  # no per-batch lines on a terminal
    assert "succeeded: 30 items, 30 created" in text
