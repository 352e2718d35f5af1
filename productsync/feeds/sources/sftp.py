"""SFTP sources (paramiko): the server's host key checked against known_hosts, never
accepted unseen; a password or a private key file from the credentials."""

import os
import posixpath
import stat
from collections.abc import Callable

import paramiko

from productsync.exceptions import SourceError
from productsync.feeds.sources.base import CHUNK, Location, RemoteFile, TransientError, timeouts
from productsync.feeds.sources.credentials import Credentials

# Reads in flight at once: a window of requests of REQUEST bytes, asked together and written
# out before the next window is asked (paramiko's whole-file prefetch holds what arrives
# before it is read in memory, and scans all of it at each read).
REQUEST = 32 * 1024
WINDOW = 64 * REQUEST


def _window(offset: int, size: int) -> list[tuple[int, int]]:
    end = min(offset + WINDOW, size)
    return [(start, min(REQUEST, end - start)) for start in range(offset, end, REQUEST)]


def _host_key_error(location: Location, known_hosts: str, exc: Exception) -> SourceError:
    where = known_hosts or "~/.ssh/known_hosts"
    host = location.host if location.port == 22 else f"[{location.host}]:{location.port}"
    if isinstance(exc, paramiko.BadHostKeyException):
        return SourceError(
            f"{location.origin}: the server's host key differs from the one in {where}: "
            "refused (a changed key can mean someone is in between; if the server's key "
            "really changed, replace its line there)"
        )
    return SourceError(
        f"{location.origin}: the server's host key is not in {where}: refused (add it, "
        f"e.g. `ssh-keyscan -p {location.port} {location.host}`, as a line for {host}, "
        "after checking its fingerprint with the server's owner)"
    )


class _Unknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key) -> None:
        raise paramiko.SSHException("unknown host key")


def _client(location: Location, credentials: Credentials) -> paramiko.SSHClient:
    connect, read = timeouts()
    client = paramiko.SSHClient()
    if credentials.known_hosts:
        try:
            client.load_host_keys(credentials.known_hosts)
        except OSError as exc:
            raise SourceError(f"cannot read known_hosts {credentials.known_hosts}: {exc}") from None
    else:
        client.load_system_host_keys()
    client.set_missing_host_key_policy(_Unknown())
    if credentials.key_file and not os.access(credentials.key_file, os.R_OK):
        raise SourceError(f"cannot read the key_file {credentials.key_file}")
    try:
        client.connect(
            location.host,
            location.port,
            username=location.user or credentials.username,
            password=credentials.password,
            key_filename=credentials.key_file,
            timeout=connect,
            banner_timeout=connect,
            auth_timeout=read,
            channel_timeout=read,
            allow_agent=False,
            look_for_keys=False,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise _host_key_error(location, credentials.known_hosts, exc) from None
    except paramiko.AuthenticationException:
        client.close()
        raise SourceError(f"{location.origin}: the server refused the credentials") from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        client.close()
        if "unknown host key" in str(exc):
            raise _host_key_error(location, credentials.known_hosts, exc) from None
        raise TransientError(f"{location.origin}: cannot connect: {exc}") from None
    return client


class SftpTransport:
    """One SSH connection and its SFTP session."""

    def __init__(self, location: Location, credentials: Credentials) -> None:
        self.location = location
        self.client = _client(location, credentials)
        try:
            self.sftp = self.client.open_sftp()
            self.sftp.get_channel().settimeout(timeouts()[1])
        except (OSError, paramiko.SSHException) as exc:
            self.client.close()
            raise TransientError(f"{location.origin}: no SFTP session: {exc}") from None

    def _error(self, path: str, exc: Exception) -> Exception:
        if isinstance(exc, FileNotFoundError):
            return SourceError(f"{self.location.url(path)}: no such file or folder")
        if isinstance(exc, PermissionError):
            return SourceError(f"{self.location.url(path)}: permission denied")
        return TransientError(f"{self.location.url(path)}: {exc or type(exc).__name__}")

    def files(self, folder: str) -> list[RemoteFile]:
        try:
            entries = self.sftp.listdir_attr(folder or ".")
        except (OSError, paramiko.SSHException) as exc:
            raise self._error(folder, exc) from None
        return [
            RemoteFile(posixpath.join(folder, entry.filename), entry.st_size, entry.st_mtime)
            for entry in entries
            if entry.st_mode is not None and stat.S_ISREG(entry.st_mode)
        ]

    def stat(self, path: str) -> RemoteFile:
        try:
            info = self.sftp.stat(path)
        except (OSError, paramiko.SSHException) as exc:
            raise self._error(path, exc) from None
        if info.st_mode is not None and not stat.S_ISREG(info.st_mode):
            raise SourceError(f"{self.location.url(path)}: not a file")
        return RemoteFile(path, info.st_size, info.st_mtime)

    def download(self, remote: RemoteFile, write: Callable[[bytes], None]) -> None:
        try:
            with self.sftp.open(remote.path, "rb") as file:
                if remote.size is None:
                    while chunk := file.read(CHUNK):
                        write(chunk)
                    return
                for offset in range(0, remote.size, WINDOW):
                    for chunk in file.readv(_window(offset, remote.size)):
                        write(chunk)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise self._error(remote.path, exc) from None

    def move(self, path: str, target: str) -> None:
        try:
            folder = posixpath.dirname(target)
            try:
                self.sftp.stat(folder)
            except FileNotFoundError:
                self.sftp.mkdir(folder)
            self.sftp.posix_rename(path, target)
        except (OSError, paramiko.SSHException) as exc:
            raise SourceError(
                f"{self.location.url(path)}: cannot move it to {target}: {exc}"
            ) from None

    def close(self) -> None:
        self.client.close()
