"""SFTP, FTP, FTPS and S3 sources, each against a real server on 127.0.0.1: a feed read, the
newest file of a pattern, archiving, the unchanged-file skip, refused credentials and host
keys as clear failed runs, and no secret anywhere a run is recorded or told."""

import json
import socket
import time
from io import StringIO

import paramiko
import pytest
from django.apps import apps
from django.core import serializers
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from oscar.core.loading import get_model

from productsync.models import SyncRun
from tests.conftest import product

Product = get_model("catalogue", "Product")

pytestmark = pytest.mark.django_db(transaction=True)


def json_feed(*upcs: str) -> str:
    return json.dumps([product(upc) for upc in upcs])


def csv_feed(*upcs: str) -> str:
    rows = "".join(f"{upc},Product {upc},Book\n" for upc in upcs)
    return "upc,title,product_class\n" + rows


def sync(*args: str) -> tuple[SyncRun, str]:
    """Run the command as a user does; return the run it recorded and what it printed."""
    out, err = StringIO(), StringIO()
    try:
        call_command("sync_products", *args, stdout=out, stderr=err)
        message = ""
    except CommandError as exc:
        message = str(exc)
    except SystemExit as exc:  # a run that ended failed or partial
        message = f"exit {exc.code}"
    return SyncRun.objects.latest("pk"), out.getvalue() + err.getvalue() + message


def upcs() -> set[str]:
    return set(Product.objects.values_list("upc", flat=True))


def test_a_remote_feed_syncs_under_its_public_name(remote):
    url = remote.put("in/feed.json", json_feed("R1", "R2", "R3"))

    run, _ = sync("--source", url, "--credentials", "supplier")

    assert (run.status, run.created, run.error) == ("succeeded", 3, "")
    assert run.source == url
    assert upcs() == {"R1", "R2", "R3"}


def test_a_pattern_picks_the_newest_file_and_names_it(remote):
    now = time.time()
    # By modification time, not by name: stock_z is older than stock_m.
    remote.put("in/stock_z.csv", csv_feed("OLD"), mtime=now - 300)
    if remote.scheme == "s3":
        time.sleep(1.1)  # S3 keeps modification times to the second
    newest = remote.put("in/stock_m.csv", csv_feed("NEW1", "NEW2"), mtime=now - 100)
    remote.put("in/other.csv", csv_feed("OTHER"), mtime=now)

    run, _ = sync("--source", remote.url("in/stock_*.csv"), "--credentials", "supplier")

    assert (run.status, run.created) == ("succeeded", 2)
    assert upcs() == {"NEW1", "NEW2"}
    assert run.source == remote.url("in/stock_*.csv")
    assert any(
        note.startswith(f"read {newest}: the newest of 2 file(s) matching 'stock_*.csv'")
        for note in run.notes
    ), run.notes


def test_a_pattern_matching_nothing_is_a_clear_failed_run(remote):
    remote.put("in/other.csv", csv_feed("OTHER"))

    run, said = sync("--source", remote.url("in/stock_*.csv"), "--credentials", "supplier")

    assert run.status == "failed"
    assert "no file matches 'stock_*.csv'" in run.error
    assert "no file matches 'stock_*.csv'" in said
    assert upcs() == set()


def test_a_file_read_in_full_is_archived_and_a_failed_one_stays(remote):
    good = remote.put("in/good.json", json_feed("A1", "A2"))
    # Two items, then the file is cut: the run fails part-way.
    broken = remote.put("in/broken.json", json_feed("B1", "B2")[:-40])

    run, _ = sync("--source", good, "--credentials", "supplier", "--archive-to", "done")
    failed, _ = sync("--source", broken, "--credentials", "supplier", "--archive-to", "done")

    assert (run.status, run.created) == ("succeeded", 2)
    assert not remote.exists("in/good.json") and remote.exists("in/done/good.json")
    assert f"archived to {remote.url('in/done/good.json')}" in run.notes
    assert failed.status == "failed" and "feed broke" in failed.error
    assert remote.exists("in/broken.json") and not remote.exists("in/done/broken.json")


def test_a_dry_run_leaves_the_file_in_place(remote):
    url = remote.put("in/feed.json", json_feed("D1"))

    run, _ = sync("--source", url, "--credentials", "supplier", "--archive-to", "done", "--dry-run")

    assert run.status == "succeeded"
    assert remote.exists("in/feed.json")


def test_an_unchanged_remote_file_is_skipped_before_download(remote):
    url = remote.put("in/feed.json", json_feed("U1", "U2"), mtime=time.time() - 60)
    first, _ = sync("--source", url, "--credentials", "supplier")
    downloads = remote.downloads()

    second, said = sync("--source", url, "--credentials", "supplier")

    assert (first.status, first.created) == ("succeeded", 2)
    assert (second.status, second.items) == ("succeeded", 0)
    assert "the feed file is unchanged since run" in said
    assert remote.downloads() == downloads  # not fetched again
    if remote.scheme == "s3":
        time.sleep(1.1)
    remote.put("in/feed.json", json_feed("U1", "U2", "U3"), mtime=time.time())
    third, _ = sync("--source", url, "--credentials", "supplier")
    assert (third.status, third.created, third.unchanged) == ("succeeded", 1, 2)


def test_wrong_credentials_are_a_clear_failed_run(remote):
    url = remote.put("in/feed.json", json_feed("W1"))

    run, said = sync("--source", url, "--credentials", "wrong")

    assert run.status == "failed"
    assert "refused the credentials" in run.error
    assert "refused the credentials" in said
    assert upcs() == set()


def test_a_file_over_the_size_limit_is_refused(remote, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "UPLOAD_MAX_BYTES": 100}
    url = remote.put("in/feed.json", json_feed("L1", "L2"))

    run, _ = sync("--source", url, "--credentials", "supplier")

    assert run.status == "failed"
    assert "larger than the limit of 100 bytes" in run.error


def test_no_secret_in_any_record_or_output(remote, caplog):
    caplog.set_level("DEBUG")
    url = remote.put("in/feed.json", json_feed("S1"))
    remote.put("in/stock_1.csv", csv_feed("S2"))
    said = [
        sync("--source", url, "--credentials", "supplier", "--archive-to", "/done")[1],
        sync("--source", url, "--credentials", "wrong")[1],
        sync("--source", remote.url("in/stock_*.csv"), "--credentials", "supplier")[1],
        sync("--source", remote.url("in/none_*.csv"), "--credentials", "supplier")[1],
    ]
    assert SyncRun.objects.count() == 4
    assert remote.exists("done/feed.json")
    records = "".join(
        serializers.serialize("json", model.objects.all())
        for model in apps.get_app_config("productsync").get_models()
    )
    secrets = [*remote.secrets, *[v for v in remote.wrong.values() if isinstance(v, str)]]
    secrets = [s for s in secrets if s not in remote.entry.values() or s in remote.secrets]
    for secret in secrets:
        assert secret not in records
        assert secret not in "".join(said)
        assert secret not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "sftp://feeds:Pa55word@127.0.0.1:2222/in/feed.csv",
        "ftp://feeds:Pa55word@127.0.0.1/in/feed.csv",
        "http://feeds:Pa55word@127.0.0.1:9/feed.json",
    ],
)
def test_a_password_in_the_url_is_refused_before_anything_is_recorded(url):
    with pytest.raises(CommandError) as error:
        call_command("sync_products", "--source", url, stdout=StringIO(), stderr=StringIO())

    assert "PRODUCTSYNC['CREDENTIALS']" in str(error.value)
    assert "Pa55word" not in str(error.value)
    assert SyncRun.objects.count() == 0


def test_unknown_credentials_are_a_clear_error(sftp_remote):
    with pytest.raises(CommandError, match="no credentials named 'nope'.*known: supplier"):
        call_command(
            "sync_products",
            "--source",
            sftp_remote.url("in/feed.json"),
            "--credentials",
            "nope",
            stdout=StringIO(),
        )


def test_the_url_user_name_is_used_and_left_out_of_the_source(sftp_remote, settings):
    entry = {key: v for key, v in sftp_remote.entry.items() if key != "username"}
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREDENTIALS": {"supplier": entry}}
    sftp_remote.put("in/feed.json", json_feed("N1"))
    url = sftp_remote.url("in/feed.json").replace("sftp://", "sftp://feeds@")

    run, _ = sync("--source", url, "--credentials", "supplier")

    assert (run.status, run.created) == ("succeeded", 1)
    assert run.source == sftp_remote.url("in/feed.json")


def test_sftp_reads_with_a_private_key_file(sftp_remote, settings, tmp_path):
    key_file = tmp_path / "id_ecdsa"
    sftp_remote.server.client_key.write_private_key_file(str(key_file))
    entry = {**sftp_remote.entry, "key_file": str(key_file)}
    del entry["password"]
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREDENTIALS": {"supplier": entry}}
    url = sftp_remote.put("in/feed.json", json_feed("K1"))

    run, _ = sync("--source", url, "--credentials", "supplier")

    assert (run.status, run.created) == ("succeeded", 1)


@pytest.mark.parametrize("known", ["other key", "no line"])
def test_an_unknown_or_changed_host_key_is_refused(sftp_remote, known):
    known_hosts = sftp_remote.entry["known_hosts"]
    with open(known_hosts, "w") as file:
        if known == "other key":
            file.write(sftp_remote.server.known_hosts_line(paramiko.ECDSAKey.generate()))
    url = sftp_remote.put("in/feed.json", json_feed("H1"))

    run, said = sync("--source", url, "--credentials", "supplier")

    assert run.status == "failed"
    expected = "differs from the one in" if known == "other key" else "is not in"
    assert f"the server's host key {expected} {known_hosts}: refused" in run.error
    assert sftp_remote.server.opened == 0
    assert upcs() == set()


def test_ftps_refuses_an_untrusted_certificate_unless_told(ftps_remote, settings):
    remote = ftps_remote
    url = remote.put("in/feed.json", json_feed("T1"))
    untrusted = {key: v for key, v in remote.entry.items() if key != "verify"}
    unchecked = {**untrusted, "verify": False}
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "CREDENTIALS": {"untrusted": untrusted, "unchecked": unchecked},
    }

    refused, _ = sync("--source", url, "--credentials", "untrusted")
    accepted, _ = sync("--source", url, "--credentials", "unchecked")

    assert refused.status == "failed"
    assert "the server's TLS certificate is not trusted" in refused.error
    assert (accepted.status, accepted.created) == ("succeeded", 1)


def test_s3_keys_from_the_aws_environment(s3_remote, settings, monkeypatch):
    remote = s3_remote
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", remote.entry["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", remote.entry["secret_key"])
    entry = {"endpoint_url": remote.entry["endpoint_url"], "region": "us-east-1"}
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "CREDENTIALS": {"env": entry}}
    url = remote.put("in/feed.json", json_feed("E1"))

    run, _ = sync("--source", url, "--credentials", "env")

    assert (run.status, run.created) == ("succeeded", 1)


def test_a_server_that_is_not_there_fails_after_the_retries(sftp_remote, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "HTTP_RETRIES": 2}
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]

    run, _ = sync("--source", f"sftp://127.0.0.1:{port}/in/feed.json", "--credentials", "supplier")

    assert run.status == "failed"
    assert "cannot connect" in run.error and "after 2 retries" in run.error


def test_the_credentials_setting_is_checked_for_shape(settings):
    settings.PRODUCTSYNC = {
        "CREDENTIALS": {
            "supplier": {"user": "x", "password": 5, "verify": "/etc/ssl/ca.pem"},
            "other": "not a dict",
        }
    }

    messages = [e.msg for e in run_checks() if e.id == "productsync.E040"]

    assert messages == [
        "PRODUCTSYNC['CREDENTIALS']: 'supplier' has an unknown key 'user'.",
        "PRODUCTSYNC['CREDENTIALS']: 'supplier': password must be a str.",
        "PRODUCTSYNC['CREDENTIALS']: 'other' must be a name (a string) mapped to a dict.",
    ]


@pytest.mark.parametrize("scheme", ["sftp", "ftp", "ftps", "s3"])
def test_a_silent_server_fails_within_the_timeouts(scheme, settings):
    """A server that accepts the connection and never answers holds a run no longer than the
    HTTP timeouts (each try) allow."""
    entry = {
        "endpoint_url": "",
        "region": "us-east-1",
        "access_key": "AKIASILENT",
        "secret_key": "silent-secret",
    }
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "CREDENTIALS": {"supplier": {"username": "feeds", "password": "silent-pw"}, "s3": entry},
        "HTTP_TIMEOUT": (1, 1),
        "HTTP_RETRIES": 1,
        "HTTP_BACKOFF": 0,
    }
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        if scheme == "s3":
            entry["endpoint_url"] = f"http://127.0.0.1:{port}"
            url, name = "s3://feeds/in/feed.json", "s3"
        else:
            url, name = f"{scheme}://127.0.0.1:{port}/in/feed.json", "supplier"
        started = time.monotonic()

        run, _ = sync("--source", url, "--credentials", name)

    assert run.status == "failed"
    assert "after 1 retries" in run.error
    assert time.monotonic() - started < 20
