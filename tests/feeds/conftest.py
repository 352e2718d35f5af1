"""Remote sources on real servers on 127.0.0.1: the `remote` fixture gives each of SFTP, FTP,
FTPS and S3 in turn, with PRODUCTSYNC["CREDENTIALS"] entries "supplier" (right) and "wrong"."""

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import PASSWORD, USER, FtpServer, S3Server, SftpServer


@dataclass
class Remote:
    """A server holding feed files: URLs of its paths, the credentials entry that reads them
    and one that is refused, and its secrets (which no record or output may show)."""

    scheme: str
    base: str
    entry: dict
    wrong: dict
    secrets: tuple[str, ...]
    put_file: Callable[[str, bytes, float | None], None]
    exists: Callable[[str], bool]
    downloads: Callable[[], int | None]
    server: object = None

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def put(self, path: str, data: bytes | str, mtime: float | None = None) -> str:
        self.put_file(path, data.encode() if isinstance(data, str) else data, mtime)
        return self.url(path)


def _folder_put(root: Path) -> Callable[[str, bytes, float | None], None]:
    def put(path: str, data: bytes, mtime: float | None) -> None:
        local = root / path
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        if mtime is not None:
            os.utime(local, (mtime, mtime))

    return put


def _sftp(tmp_path: Path) -> tuple[Remote, Callable[[], None]]:
    root = tmp_path / "sftp"
    root.mkdir()
    server = SftpServer(root)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    entry = {"username": USER, "password": PASSWORD, "known_hosts": str(known_hosts)}
    remote = Remote(
        "sftp",
        server.url,
        entry,
        {**entry, "password": "not-the-password"},
        (PASSWORD,),
        _folder_put(root),
        lambda path: (root / path).exists(),
        lambda: server.opened,
        server,
    )
    return remote, server.stop


def _ftp(tmp_path: Path, tls: bool) -> tuple[Remote, Callable[[], None]]:
    root = tmp_path / "ftp"
    root.mkdir()
    server = FtpServer(root, tls=tls, cert_folder=tmp_path)
    entry = {"username": USER, "password": PASSWORD}
    if tls:
        entry["verify"] = str(server.cert_file)  # the test's own certificate authority
    remote = Remote(
        "ftps" if tls else "ftp",
        server.url,
        entry,
        {**entry, "password": "not-the-password"},
        (PASSWORD,),
        _folder_put(root),
        lambda path: (root / path).exists(),
        lambda: server.sent,
    )
    return remote, server.stop


@pytest.fixture(scope="session")
def s3_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3Server()
    yield server
    server.stop()


def _s3(server: S3Server) -> Remote:
    client = server.client()
    bucket = f"feeds-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)

    def put(path: str, data: bytes, mtime: float | None) -> None:
        client.put_object(Bucket=bucket, Key=path, Body=data)

    def exists(path: str) -> bool:
        return client.list_objects_v2(Bucket=bucket, Prefix=path).get("KeyCount", 0) > 0

    entry = {
        "endpoint_url": server.endpoint,
        "region": "us-east-1",
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }
    return Remote(
        "s3",
        f"s3://{bucket}",
        entry,
        {**entry, "secret_key": "not-the-secret-key"},
        (server.secret_key,),
        put,
        exists,
        lambda: None,
    )


def _remote_start(kind: str, request, tmp_path: Path, settings):
    """Start a server of kind; configure its credentials and quick timeouts."""
    stop = None
    if kind == "sftp":
        server, stop = _sftp(tmp_path)
    elif kind in ("ftp", "ftps"):
        server, stop = _ftp(tmp_path, tls=kind == "ftps")
    else:
        server = _s3(request.getfixturevalue("s3_server"))
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "CREDENTIALS": {"supplier": server.entry, "wrong": server.wrong},
        "HTTP_RETRIES": 1,
        "HTTP_BACKOFF": 0,
        "HTTP_TIMEOUT": (5, 5),
    }
    return server, stop


@pytest.fixture(params=["sftp", "ftp", "ftps", "s3"])
def remote(request, tmp_path, settings) -> Remote:
    """Each kind of remote server in turn."""
    server, stop = _remote_start(request.param, request, tmp_path, settings)
    yield server
    if stop is not None:
        stop()


@pytest.fixture
def sftp_remote(request, tmp_path, settings) -> Remote:
    server, stop = _remote_start("sftp", request, tmp_path, settings)
    yield server
    stop()


@pytest.fixture
def ftps_remote(request, tmp_path, settings) -> Remote:
    server, stop = _remote_start("ftps", request, tmp_path, settings)
    yield server
    stop()


@pytest.fixture
def s3_remote(request, tmp_path, settings) -> Remote:
    server, _ = _remote_start("s3", request, tmp_path, settings)
    return server
