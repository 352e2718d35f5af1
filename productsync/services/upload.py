"""Feeds given in the admin: stored in a private folder outside the served media (an upload, or
a URL fetched by the worker), previewed, and synced exactly as previewed (checked by SHA-256).
The admin serves them back only to staff, as attachments."""

import hashlib
import os
import tempfile
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, default_storage

from productsync.conf import app_settings
from productsync.exceptions import ProductSyncError, SourceError
from productsync.feeds import is_url
from productsync.http import FetchError, GuardedSession, url_import_guard
from productsync.models import SyncRun
from productsync.services.source import source_display

UPLOAD_DIR = "productsync/uploads"
CHUNK = 1 << 16


def upload_dir() -> str:
    """PRODUCTSYNC['UPLOAD_DIR'], or by default a `productsync-uploads` folder beside
    MEDIA_ROOT (outside it: media is served to anyone), or in the working directory when
    MEDIA_ROOT is not set."""
    configured = app_settings.UPLOAD_DIR
    if configured:
        return os.path.abspath(configured)
    if not settings.MEDIA_ROOT:  # no media served from a folder: the working directory's
        return os.path.abspath("productsync-uploads")
    media = os.path.abspath(settings.MEDIA_ROOT)
    return os.path.join(os.path.dirname(media), "productsync-uploads")


def upload_storage(name: str = "") -> FileSystemStorage:
    """The storage of a stored feed: the private folder, or, for a file an older version
    stored in the public media (runs recorded before), the media storage it is in."""
    private = FileSystemStorage(location=upload_dir())
    if name and not private.exists(name) and default_storage.exists(name):
        return default_storage
    return private


@dataclass(frozen=True)
class Upload:
    """A stored feed file: its storage name, local path, SHA-256 and the name it came with."""

    name: str
    path: str
    sha256: str
    filename: str


def upload_digest(name: str) -> str:
    with upload_storage(name).open(name, "rb") as stored:
        return _stream_digest(stored)


def mapping_digest(options: dict | None) -> str:
    """SHA-256 of the mapping file the feed options name, or '' without one (OSError when it
    is gone)."""
    mapping = (options or {}).get("mapping")
    if not mapping:
        return ""
    with open(mapping, "rb") as stream:
        return _stream_digest(stream)


def _stream_digest(stream) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def upload_store(upload: File, filename: str | None = None) -> Upload:
    """Store an uploaded file (read in chunks, never whole) under a name of its own; refuse one
    over PRODUCTSYNC['UPLOAD_MAX_BYTES']. Workers read it by its local path, so the storage
    must have one (FileSystemStorage) shared with them."""
    limit = app_settings.UPLOAD_MAX_BYTES
    try:
        size = upload.size
    except AttributeError:  # a stream (a fetched URL): its reader counts instead
        size = None
    if size is not None and size > limit:
        raise ProductSyncError(f"the file is larger than the limit of {limit} bytes")
    filename = os.path.basename(filename or upload.name or "feed") or "feed"
    storage = upload_storage()
    name = storage.save(f"{UPLOAD_DIR}/{uuid.uuid4().hex}/{filename}", upload)
    return Upload(name, storage.path(name), upload_digest(name), filename)


def upload_fetch(url: str) -> Upload:
    """Fetch an http(s) feed into storage: streamed into a temporary file first, refused past
    UPLOAD_MAX_BYTES (nothing is left in storage then)."""
    limit = app_settings.UPLOAD_MAX_BYTES
    # A user named this URL, not the operator: public addresses only, on every redirect hop
    # (HTTP_HEADERS only under their prefix, one deadline for the whole request, as feeds).
    session = GuardedSession(url_import_guard())
    try:
        response = session.get(url)
        try:
            if response.status_code != 200:
                raise SourceError(f"{source_display(url)}: HTTP {response.status_code}")
            with tempfile.TemporaryFile() as spool:
                while chunk := response.read(CHUNK):
                    spool.write(chunk)
                    if spool.tell() > limit:
                        raise SourceError(
                            f"{source_display(url)}: the feed is larger than the limit of "
                            f"{limit} bytes"
                        )
                spool.seek(0)
                filename = os.path.basename(url.split("?", 1)[0].rstrip("/")) or "feed"
                return upload_store(File(spool, name=filename), filename)
        finally:
            response.close()
    except (OSError, FetchError) as exc:
        raise SourceError(f"{source_display(url)}: {exc}") from None
    finally:
        session.close()


def upload_open(name: str):
    """The stored file, open for reading (OSError when it is gone)."""
    return upload_storage(name).open(name, "rb")


def upload_path(name: str) -> str:
    """The local path of a stored feed, for the worker to read."""
    return upload_storage(name).path(name)


def _names_of(runs) -> set[str]:
    """Storage names of the files (feeds, mapping files) these runs read from storage."""
    roots = [upload_dir(), default_storage.path("")]
    names = set()
    for upload, options in runs.exclude(upload="").values_list("upload", "feed_options"):
        names.add(upload)
        mapping = (options or {}).get("mapping") or ""
        for root in roots:
            if mapping.startswith(os.path.join(root, UPLOAD_DIR)):
                names.add(os.path.relpath(mapping, root))
    return names


def uploads_prune(runs) -> int:
    """Delete these runs (a queryset) and then the stored files no remaining run reads;
    return how many runs were deleted."""
    names = _names_of(runs)
    _, deleted = runs.delete()
    for name in names - _names_of(SyncRun.objects.all()):
        upload_storage(name).delete(name)
    return deleted.get(SyncRun._meta.label, 0)


def upload_check(run: SyncRun) -> None:
    """Raise ProductSyncError when the run's stored file or its mapping file is gone or
    changed since it was read: a confirmed sync writes exactly what the preview showed."""
    try:
        digest = upload_digest(run.upload)
    except OSError:
        raise ProductSyncError(f"the file of run {run.pk} is gone") from None
    if digest != run.upload_sha256:
        raise ProductSyncError(
            f"the file of run {run.pk} changed since its preview (its SHA-256 differs): "
            "upload it again and preview it"
        )
    mapping_check(run.feed_options, run.mapping_sha256, f"the preview {run.pk} read")


def mapping_check(options: dict | None, sha256: str, read_by: str) -> None:
    """Raise ProductSyncError when the mapping file of the options is gone or is not the one
    whose digest is sha256 (a preview recorded before digests were kept has none)."""
    try:
        digest = mapping_digest(options)
    except OSError:
        raise ProductSyncError(f"the mapping file {read_by} is gone") from None
    if digest != sha256:
        raise ProductSyncError(
            f"the mapping file changed since {read_by} (its SHA-256 differs): "
            "preview the feed again with the mapping as it is now"
        )


def source_of(upload: Upload | None, url: str) -> str:
    if upload is None and not is_url(url):
        raise ProductSyncError("give a file or an http(s) URL")
    return upload.path if upload else url
