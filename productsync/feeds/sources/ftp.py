"""FTP and FTPS sources (ftplib): passive mode; FTPS is explicit TLS on the control and data
connections, its certificate verified unless the credentials say verify false."""

import contextlib
import ftplib
import posixpath
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

from productsync.exceptions import SourceError
from productsync.feeds.sources.base import CHUNK, Location, RemoteFile, TransientError, timeouts
from productsync.feeds.sources.credentials import Credentials

# What a dropped or slow connection raises: worth another try.
TRANSIENT = (OSError, EOFError, ftplib.error_temp, ftplib.error_reply)


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


def _login(ftp: ftplib.FTP, location: Location, credentials: Credentials) -> None:
    user = location.user or credentials.username or "anonymous"
    try:
        ftp.login(user, credentials.password or "")
    except ftplib.error_perm:
        raise SourceError(f"{location.origin}: the server refused the credentials") from None


def _connect(location: Location, credentials: Credentials) -> ftplib.FTP:
    connect, read = timeouts()
    tls = location.scheme == "ftps"
    ftp = ftplib.FTP_TLS(context=_tls_context(credentials.verify)) if tls else ftplib.FTP()
    try:
        ftp.connect(location.host, location.port, timeout=connect)
        ftp.sock.settimeout(read)
        ftp.timeout = read  # the data connections'
        if tls:
            ftp.auth()
        _login(ftp, location, credentials)
        if tls:
            ftp.prot_p()
        ftp.set_pasv(True)
    except ssl.SSLCertVerificationError as exc:
        ftp.close()
        raise SourceError(
            f"{location.origin}: the server's TLS certificate is not trusted: "
            f"{exc.verify_message} (give the CA bundle as verify, or verify false)"
        ) from None
    except ftplib.error_perm as exc:
        ftp.close()
        raise SourceError(f"{location.origin}: {str(exc).strip()}") from None
    except SourceError:
        ftp.close()
        raise
    except TRANSIENT as exc:
        ftp.close()
        raise TransientError(f"{location.origin}: cannot connect: {exc}") from None
    return ftp


def _mlsd_time(value: str | None) -> float | None:
    try:
        moment = datetime.strptime(value[:14], "%Y%m%d%H%M%S")
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=UTC).timestamp()


class FtpTransport:
    """One FTP or FTPS control connection."""

    def __init__(self, location: Location, credentials: Credentials) -> None:
        self.location = location
        self.ftp = _connect(location, credentials)

    def _error(self, path: str, exc: Exception) -> Exception:
        if isinstance(exc, ftplib.error_perm):
            return SourceError(f"{self.location.url(path)}: {str(exc).strip()}")
        return TransientError(f"{self.location.url(path)}: {exc or type(exc).__name__}")

    def files(self, folder: str) -> list[RemoteFile]:
        try:
            entries = list(self.ftp.mlsd(folder or "/", facts=["type", "size", "modify"]))
        except (*TRANSIENT, ftplib.error_perm) as exc:
            raise self._error(folder, exc) from None
        return [
            RemoteFile(
                posixpath.join(folder, name),
                int(facts["size"]) if facts.get("size", "").isdigit() else None,
                _mlsd_time(facts.get("modify")),
            )
            for name, facts in entries
            if facts.get("type", "file") == "file"
        ]

    def stat(self, path: str) -> RemoteFile:
        name = posixpath.basename(path)
        for remote in self.files(posixpath.dirname(path)):
            if remote.name == name:
                return remote
        raise SourceError(f"{self.location.url(path)}: no such file")

    def download(self, remote: RemoteFile, write: Callable[[bytes], None]) -> None:
        try:
            self.ftp.voidcmd("TYPE I")
            with self.ftp.transfercmd(f"RETR {remote.path}") as conn:
                while chunk := conn.recv(CHUNK):
                    write(chunk)
                if isinstance(conn, ssl.SSLSocket):
                    conn.unwrap()
            self.ftp.voidresp()
        except (*TRANSIENT, ftplib.error_perm) as exc:
            raise self._error(remote.path, exc) from None

    def move(self, path: str, target: str) -> None:
        try:
            folder = posixpath.dirname(target)
            # It may exist (or cannot be made: the rename says so).
            with contextlib.suppress(ftplib.error_perm):
                self.ftp.mkd(folder)
            self.ftp.rename(path, target)
        except (*TRANSIENT, ftplib.error_perm) as exc:
            raise SourceError(
                f"{self.location.url(path)}: cannot move it to {target}: {str(exc).strip()}"
            ) from None

    def close(self) -> None:
        try:
            self.ftp.quit()
        except (*TRANSIENT, ftplib.error_perm):
            self.ftp.close()
