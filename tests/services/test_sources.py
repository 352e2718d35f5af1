"""One source, one key; every --source its own run; --json on every path that recorded a
run; the summary is the database's."""

import json
import os
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from oscar.core.loading import get_model

from productsync.models import SyncRun
from productsync.services import source_key
from tests.conftest import product, run_command
from tests.guarantees.test_faults import FAULT_SETTINGS, start_sync, wait_for_batch

Product = get_model("catalogue", "Product")


def holder(source: str) -> SyncRun:
    """Another process's run of source, alive (fresh heartbeat): it holds the lease."""
    return SyncRun.objects.create(
        source=source, batch_size=10, owner="elsewhere:1", heartbeat_at=timezone.now()
    )


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_source_keys():
    assert source_key("HTTPS://Feeds.LocalHost:8443/Path/Feed.JSON?a=B") == (
        "https://feeds.localhost:8443/Path/Feed.JSON?a=B"
    )
    # A user name is not part of the source's name (a password is refused before this).
    assert source_key("http://user:Secret@LOCALHOST/x") == "http://localhost/x"
    assert source_key("SFTP://feeds@Files.LocalHost:2222/in/stock_*.csv") == (
        "sftp://files.localhost:2222/in/stock_*.csv"
    )
    assert source_key("/tmp/../tmp/./x.json") == "/tmp/x.json"


@pytest.mark.django_db(transaction=True)
def test_relative_symlinked_and_absolute_paths_are_one_source(tmp_path, monkeypatch, write_feed):
    feed = write_feed([product(f"S{i}") for i in range(5)])
    (tmp_path / "sub").mkdir()
    os.symlink(feed, tmp_path / "link.json")
    monkeypatch.chdir(tmp_path / "sub")

    call_command("sync_products", "--source", "../feed.json", stdout=StringIO())
    first = SyncRun.objects.get()
    assert first.source == str((tmp_path / "feed.json").resolve())

    # The same file by another name is unchanged since that run: skipped as such.
    out = StringIO()
    call_command("sync_products", "--source", "../link.json", stdout=out)
    second = SyncRun.objects.latest("pk")
    assert second.source == first.source
    assert "the feed file is unchanged since run" in out.getvalue()

    # And the lease is the file's, whatever the name.
    holder(first.source)
    with pytest.raises(CommandError, match="of this source is still running"):
        call_command("sync_products", "--source", str(tmp_path / "feed.json"), stdout=StringIO())
    assert SyncRun.objects.latest("pk").status == "skipped"


@pytest.mark.django_db(transaction=True)
def test_a_url_differing_in_scheme_and_host_case_holds_the_same_lease():
    held = holder("http://localhost:9/feeds/A.json")
    result = run_command("sync_products", "--source", "HTTP://LocalHost:9/feeds/A.json", "--json")
    assert result.returncode == 1
    assert f"run {held.pk} of this source is still running" in result.stderr
    [summary] = json_lines(result.stdout)
    skipped = SyncRun.objects.get(status="skipped")
    assert (summary["run_id"], summary["status"]) == (skipped.pk, "skipped")
    assert skipped.source == "http://localhost:9/feeds/A.json"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_source_is_refused(settings, write_feed, empty):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SOURCE": write_feed([product("X")])}
    result = run_command("sync_products", "--source", empty)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "argument --source: is empty: give a path or an http(s) URL"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert not SyncRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_each_source_runs_to_the_end_and_the_exit_status_is_the_worst(tmp_path, write_feed):
    good = write_feed([product("G1"), product("G2")], name="good.json")
    partial = write_feed([product("P1"), {"upc": "P2"}], name="partial.json")
    missing = str(tmp_path / "missing.json")
    result = run_command(
        *("sync_products", "--json", "--source", missing, "--source", partial),
        *("--source", good),
    )
    assert result.returncode == 2
    assert "missing.json: cannot open: No such file or directory" in result.stderr
    summaries = json_lines(result.stdout)
    runs = list(SyncRun.objects.order_by("pk"))
    assert [s["run_id"] for s in summaries] == [run.pk for run in runs]
    assert [s["status"] for s in summaries] == ["failed", "completed_with_failures", "succeeded"]
    assert sorted(Product.objects.values_list("upc", flat=True)) == ["G1", "G2", "P1"]

    result = run_command("sync_products", "--source", partial, "--source", good)
    assert result.returncode == 1  # partial, then unchanged: the worst is 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_summary_is_the_databases_after_connections_keep_dying(write_feed):
    """pg_terminate_backend in a loop: whatever the run managed to record, the --json line
    says exactly that, and the run is not left running."""
    feed = write_feed([product(f"D{i:03d}") for i in range(400)])
    env = {"DATABASE_OPTIONS": '{"application_name": "ps-i18-victim"}', **FAULT_SETTINGS}
    process = start_sync(feed, env, "--json")
    wait_for_batch(process, 2)
    kills = 0
    with connection.cursor() as cursor:
        while kills < 12 and process.poll() is None:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'ps-i18-victim'"
            )
            kills += cursor.fetchone()[0]
            time.sleep(0.01)
    out, err = process.communicate(timeout=120)
    assert kills >= 2
    assert "Traceback" not in err
    run = SyncRun.objects.get()
    assert run.status != "running", (out[-2000:], err[-2000:])
    summaries = json_lines(out)
    assert len(summaries) == 1, (out[-3000:], err[-3000:])
    [summary] = summaries
    assert summary["run_id"] == run.pk
    for key in ("status", "items", "created", "failed", "batches", "failed_batches"):
        assert summary[key] == getattr(run, key), key
    assert run.items == run.created + run.failed
    assert run.items == sum(run.batch_set.values_list("items", flat=True))
    assert Product.objects.count() == run.created


@pytest.mark.django_db(transaction=True)
def test_a_failed_csv_row_with_a_quoted_newline_stays_one_line_and_one_item(tmp_path):
    from productsync.exports import failures_jsonl
    from productsync.services import sync_run_retry

    path = tmp_path / "feed.csv"
    path.write_text(
        'upc,title,product_class\nA,Title A,Book\nB,"two\nlines",Book,extra\nC,Title C,Book\n'
    )
    with pytest.raises(SystemExit):
        call_command("sync_products", "--source", str(path), stdout=StringIO())
    run = SyncRun.objects.get()
    assert (run.created, run.failed) == (2, 1)
    lines = list(failures_jsonl(run.pk))
    assert lines == ['B,"two\\nlines",Book,extra\n']
    retry = sync_run_retry(run.pk)
    assert (retry.items, retry.failed) == (1, 1)  # one item again, not two
