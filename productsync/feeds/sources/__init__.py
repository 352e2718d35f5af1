"""Remote sources: SFTP, FTP(S) and S3 files fetched into a temporary file for the readers."""

from productsync.feeds.sources.base import is_remote, url_password_refuse, url_public
from productsync.feeds.sources.credentials import (
    CREDENTIAL_KEYS,
    credentials_errors,
    credentials_get,
)
from productsync.feeds.sources.fetch import (
    Fetched,
    remote_archive,
    remote_fetch,
    remote_fingerprint,
)

__all__ = [
    "CREDENTIAL_KEYS",
    "Fetched",
    "credentials_errors",
    "credentials_get",
    "is_remote",
    "remote_archive",
    "remote_fetch",
    "remote_fingerprint",
    "url_password_refuse",
    "url_public",
]
