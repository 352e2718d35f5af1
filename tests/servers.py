"""Real file servers on 127.0.0.1 for the remote-source tests, each serving a folder: SFTP
(paramiko's server side), FTP and FTPS (pyftpdlib, with a certificate made here) and S3
(moto's server). Each holds one user name and password; SFTP also one public key."""

import datetime
import ipaddress
import socket
import threading
from pathlib import Path

import paramiko
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER = "feeds"
PASSWORD = "Sup3r-S3cret-Pw"


# SFTP ----------------------------------------------------------------------------------------


class _SshAuth(paramiko.ServerInterface):
    def __init__(self, server: "SftpServer") -> None:
        self.server = server

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        good = (username, password) == (USER, PASSWORD)
        return paramiko.AUTH_SUCCESSFUL if good else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        good = username == USER and key == self.server.client_key
        return paramiko.AUTH_SUCCESSFUL if good else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(paramiko.SFTPHandle):
    def stat(self):
        return paramiko.SFTPAttributes.from_stat(Path(self.path).stat())


def _sftp_errors(method):
    def wrapped(self, *args):
        try:
            return method(self, *args)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    return wrapped


class _RootSftp(paramiko.SFTPServerInterface):
    """The server's folder as the whole file system (no escape above it)."""

    def __init__(self, auth: _SshAuth, *args, **kwargs) -> None:
        super().__init__(auth, *args, **kwargs)
        self.server = auth.server
        self.root = auth.server.root

    def _local(self, path: str) -> Path:
        return self.root / self.canonicalize(path).lstrip("/")

    @_sftp_errors
    def list_folder(self, path):
        folder = self._local(path)
        found = []
        for child in folder.iterdir():
            attributes = paramiko.SFTPAttributes.from_stat(child.stat())
            attributes.filename = child.name
            found.append(attributes)
        return found

    @_sftp_errors
    def stat(self, path):
        return paramiko.SFTPAttributes.from_stat(self._local(path).stat())

    lstat = stat

    @_sftp_errors
    def open(self, path, flags, attr):
        local = self._local(path)
        self.server.opened += 1
        handle = _Handle(flags)
        handle.path = str(local)
        handle.readfile = local.open("rb")
        return handle

    @_sftp_errors
    def rename(self, oldpath, newpath):
        self._local(oldpath).rename(self._local(newpath))
        return paramiko.SFTP_OK

    posix_rename = rename

    @_sftp_errors
    def mkdir(self, path, attr):
        self._local(path).mkdir()
        return paramiko.SFTP_OK


class SftpServer:
    """An SFTP server on 127.0.0.1 serving root; host_key is its key, client_key the one
    public key it accepts for USER."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host_key = paramiko.ECDSAKey.generate()
        self.client_key = paramiko.ECDSAKey.generate()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"sftp://127.0.0.1:{self.port}"
        self.transports: list[paramiko.Transport] = []
        self.logins = 0
        self.opened = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(sock)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _RootSftp)
            self.transports.append(transport)
            self.logins += 1
            try:
                transport.start_server(server=_SshAuth(self))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()

    def known_hosts_line(self, key: paramiko.PKey | None = None) -> str:
        key = key or self.host_key
        return f"[127.0.0.1]:{self.port} {key.get_name()} {key.get_base64()}\n"

    def stop(self) -> None:
        self.listener.close()
        for transport in self.transports:
            transport.close()


# FTP and FTPS --------------------------------------------------------------------------------


def certificate_make(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class FtpServer:
    """An FTP server on 127.0.0.1 serving root to USER; with tls, explicit FTPS required on
    the control and data connections (cert_file is then its certificate)."""

    def __init__(self, root: Path, tls: bool = False, cert_folder: Path | None = None) -> None:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
        from pyftpdlib.servers import ThreadedFTPServer

        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")
        self.sent = 0
        attributes = {
            "authorizer": authorizer,
            "banner": "test server",
            "auth_failed_timeout": 0.05,
            "on_file_sent": lambda handler, file: self._sent(),
        }
        base = FTPHandler
        self.cert_file = None
        if tls:
            self.cert_file, key_file = certificate_make(cert_folder or root.parent)
            base = TLS_FTPHandler
            attributes.update(
                certfile=str(self.cert_file),
                keyfile=str(key_file),
                tls_control_required=True,
                tls_data_required=True,
            )
        handler = type("Handler", (base,), attributes)
        self.server = ThreadedFTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"{'ftps' if tls else 'ftp'}://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        # The loop's own thread closes it: closing it from another breaks its poll.
        while not self.stopping.is_set():
            self.server.serve_forever(timeout=0.05, blocking=False)
        self.server.close_all()

    def _sent(self) -> None:
        self.sent += 1

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)


# S3 ------------------------------------------------------------------------------------------


class S3Server:
    """moto's S3-compatible server on 127.0.0.1: access_key / secret_key are an IAM user's
    keys that may use S3, and every request must be signed with them."""

    def __init__(self) -> None:
        import boto3
        import requests
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName=USER)
        iam.put_user_policy(
            UserName=USER,
            PolicyName="s3",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "s3:*", "Resource": "*"}]}',
        )
        keys = iam.create_access_key(UserName=USER)["AccessKey"]
        self.access_key, self.secret_key = keys["AccessKeyId"], keys["SecretAccessKey"]
        # From now on every request must be signed by a known key.
        requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"0", timeout=10)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def stop(self) -> None:
        import requests

        requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
        self.server.stop()
