"""Feeds given in the admin are kept outside the served media and handed back only to staff
who may view runs, as attachments the browser never renders; a run whose file an older
version kept in the media still downloads, or says it is gone."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from productsync.exceptions import SourceError
from productsync.models import SyncRun
from productsync.services import sync_run_execute
from tests.admin.test_admin_import import run_queued, upload, url
from tests.conftest import product

pytestmark = pytest.mark.django_db

EVIL = b"<html><script>alert(document.cookie)</script></html>"


def stored_files(folder: Path) -> list[Path]:
    return [path for path in Path(folder).rglob("*") if path.is_file()]


def assert_attachment(response, body: bytes, filename: str) -> None:
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == body
    assert response["Content-Disposition"].startswith(f'attachment; filename="{filename}"')
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_uploaded_html_file_is_not_in_the_media_and_downloads_as_an_attachment(
    runner, client, settings, write_feed
):
    upload(runner, EVIL, name="evil.html")
    # Read as XML (it opens with "<"), the page has no mapping: its preview fails, the file stays.
    with pytest.raises(SourceError, match="an XML feed needs"):
        run_queued()

    assert not stored_files(settings.MEDIA_ROOT)
    [kept] = stored_files(Path(settings.MEDIA_ROOT).parent / "productsync-uploads")
    assert kept.name == "evil.html" and kept.read_bytes() == EVIL
    run = sync_run_execute(write_feed([product("A")]))
    SyncRun.objects.filter(pk=run.pk).update(
        upload=str(kept.relative_to(kept.parents[3])), upload_name="evil.html"
    )

    assert_attachment(runner.get(url("upload_file", run.pk)), EVIL, "evil.html")
    client.logout()
    assert client.get(url("upload_file", run.pk)).status_code == 302  # to the login page


def test_a_run_whose_file_is_in_the_old_media_place_still_downloads(runner, settings, write_feed):
    old = Path(settings.MEDIA_ROOT) / "productsync/uploads/0123/old.jsonl"
    old.parent.mkdir(parents=True)
    old.write_bytes(b'{"upc": "A"}\n')
    run = sync_run_execute(write_feed([product("A")]))
    SyncRun.objects.filter(pk=run.pk).update(
        upload="productsync/uploads/0123/old.jsonl", upload_name="old.jsonl"
    )

    assert_attachment(runner.get(url("upload_file", run.pk)), b'{"upc": "A"}\n', "old.jsonl")
    old.unlink()
    assert runner.get(url("upload_file", run.pk)).status_code == 404


def test_an_upload_folder_inside_the_media_fails_the_checks(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "UPLOAD_DIR": str(tmp_path / "media/feeds")}

    with pytest.raises(SystemCheckError, match="productsync.E175"):
        call_command("check")
