"""A remote source's fetch into its temporary file: time and peak memory of the process.

python bench/sources.py sftp|ftp|s3 [--mib 200]

The test servers of tests/servers.py serve a file of --mib MiB of random bytes on 127.0.0.1
(in this process: SFTP and FTP from a folder, S3 from moto's memory, so the S3 figure's
baseline holds the object); the figure is remote_fetch alone, no reader.
"""

import argparse
import logging
import os
import resource
import tempfile
import time
from pathlib import Path

import _django

_django.setup()

from django.conf import settings  # noqa: E402

from productsync.feeds.sources import remote_fetch  # noqa: E402
from tests.servers import PASSWORD, USER, FtpServer, S3Server, SftpServer  # noqa: E402

MIB = 1 << 20


def file_write(path: Path, mib: int) -> None:
    block = os.urandom(MIB)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(block)


def serve(kind: str, work: Path, mib: int) -> tuple[str, dict]:
    """Start a server of kind holding in/big.csv: (its URL, a credentials entry)."""
    root = work / "root"
    if kind == "s3":
        server = S3Server()
        file_write(work / "big", mib)
        client = server.client()
        client.create_bucket(Bucket="bench-bucket")
        client.upload_file(str(work / "big"), "bench-bucket", "in/big.csv")
        entry = {
            "endpoint_url": server.endpoint,
            "region": "us-east-1",
            "access_key": server.access_key,
            "secret_key": server.secret_key,
        }
        return "s3://bench-bucket/in/big.csv", entry
    file_write(root / "in" / "big.csv", mib)
    entry = {"username": USER, "password": PASSWORD}
    if kind == "sftp":
        server = SftpServer(root)
        known_hosts = work / "known_hosts"
        known_hosts.write_text(server.known_hosts_line())
        entry["known_hosts"] = str(known_hosts)
    else:
        server = FtpServer(root)
    return f"{server.url}/in/big.csv", entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["sftp", "ftp", "s3"])
    parser.add_argument("--mib", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as work:
        url, entry = serve(args.kind, Path(work), args.mib)
        settings.PRODUCTSYNC = {"CREDENTIALS": {"bench": entry}, "UPLOAD_MAX_BYTES": 2**40}
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        fetched = remote_fetch(url, "bench")
        seconds = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.unlink(fetched.path)
    print(
        f"{args.kind}: {args.mib} MiB in {seconds:.1f} s ({args.mib / seconds:.0f} MiB/s), "
        f"peak RSS {before // 1024} -> {after // 1024} MiB"
    )


if __name__ == "__main__":
    main()
