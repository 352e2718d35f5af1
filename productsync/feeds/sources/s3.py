"""S3 sources (boto3), for AWS and S3-compatible stores (MinIO, Ceph, R2): endpoint, region
and keys from the credentials, else the usual AWS environment."""

from collections.abc import Callable

import boto3
import botocore.exceptions
from botocore.config import Config

from productsync.exceptions import SourceError
from productsync.feeds.sources.base import CHUNK, Location, RemoteFile, TransientError, timeouts
from productsync.feeds.sources.credentials import Credentials

# Error codes that no retry changes.
REFUSED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "401"}
MISSING = {"NoSuchKey", "NoSuchBucket", "404"}
# PreconditionFailed: the object changed between its listing and its download.
TRANSIENT_CODES = {"SlowDown", "InternalError", "RequestTimeout", "PreconditionFailed", "412"}
TRANSIENT = (botocore.exceptions.BotoCoreError, OSError)


def _client(credentials: Credentials):
    connect, read = timeouts()
    config = Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"total_max_attempts": 1},  # retried by the caller, within its deadline
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=credentials.endpoint_url,
        region_name=credentials.region,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        verify=credentials.verify,
        config=config,
    )


def _time(moment) -> float | None:
    return moment.timestamp() if moment is not None else None


class S3Transport:
    """A client of one bucket."""

    def __init__(self, location: Location, credentials: Credentials) -> None:
        self.location = location
        self.bucket = location.host
        self.client = _client(credentials)

    def _error(self, key: str, exc: Exception) -> Exception:
        url = self.location.url(key)
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in REFUSED:
                return SourceError(f"{url}: the store refused the credentials ({code})")
            if code in MISSING:
                return SourceError(f"{url}: no such bucket or key")
            if code.startswith("5") or code in TRANSIENT_CODES:
                return TransientError(f"{url}: {code}")
            return SourceError(f"{url}: {code}")
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return SourceError(f"{url}: no S3 keys in the credentials or the environment")
        return TransientError(f"{url}: {exc}")

    def files(self, folder: str) -> list[RemoteFile]:
        prefix = f"{folder}/" if folder else ""
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    found.append(
                        RemoteFile(
                            entry["Key"],
                            entry["Size"],
                            _time(entry.get("LastModified")),
                            entry.get("ETag", ""),
                        )
                    )
        except (botocore.exceptions.ClientError, *TRANSIENT) as exc:
            raise self._error(folder, exc) from None
        return found

    def stat(self, path: str) -> RemoteFile:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=path)
        except (botocore.exceptions.ClientError, *TRANSIENT) as exc:
            raise self._error(path, exc) from None
        return RemoteFile(
            path, head["ContentLength"], _time(head.get("LastModified")), head.get("ETag", "")
        )

    def download(self, remote: RemoteFile, write: Callable[[bytes], None]) -> None:
        extra = {"IfMatch": remote.etag} if remote.etag else {}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=remote.path, **extra)["Body"]
            with body:
                for chunk in body.iter_chunks(CHUNK):
                    write(chunk)
        except (botocore.exceptions.ClientError, *TRANSIENT) as exc:
            raise self._error(remote.path, exc) from None

    def move(self, path: str, target: str) -> None:
        try:
            self.client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": path}
            )
            self.client.delete_object(Bucket=self.bucket, Key=path)
        except (botocore.exceptions.ClientError, *TRANSIENT) as exc:
            raise SourceError(
                f"{self.location.url(path)}: cannot move it to {target}: {exc}"
            ) from None

    def close(self) -> None:
        self.client.close()
