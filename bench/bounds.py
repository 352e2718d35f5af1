"""Bounded inputs: one over-long item in a real sync fails alone, in bounded time and memory.

python bench/bounds.py [--size-mb 1024] [--string-mb 500] [--dir /tmp]

Writes two feeds (a JSON Lines file whose middle line is --size-mb long; a JSON array whose
middle item holds one --string-mb string), syncs each with manage.py sync_products into a
fresh SQLite database with the default bounds, and prints wall time, the process's peak RSS
and the run's JSON summary. Each feed holds one valid item before and after the long one.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def item(upc: str) -> bytes:
    return json.dumps(
        {"upc": upc, "title": f"Product {upc}", "product_class": "Book", "categories": ["A"]}
    ).encode()


def write_jsonl(path: Path, size_mb: int) -> None:
    with open(path, "wb") as out:
        out.write(item("BEFORE") + b"\n" + b'{"upc": "LONG", "title": "')
        for _ in range(size_mb):
            out.write(b"x" * MIB)
        out.write(b'"}\n' + item("AFTER") + b"\n")


def write_json(path: Path, string_mb: int) -> None:
    with open(path, "wb") as out:
        out.write(b"[" + item("BEFORE") + b', {"upc": "LONG", "description": "')
        for _ in range(string_mb):
            out.write(b"y" * MIB)
        out.write(b'"}, ' + item("AFTER") + b"]")


def measure(feed: Path, env: dict) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "sync_products", "--source", str(feed)]
            + ["--json", "--no-progress"],
            stdout=out,
            env=env,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
        seconds = time.perf_counter() - started
        out.seek(0)
        summary = json.loads(out.read().splitlines()[-1])
    return {
        "feed": feed.name,
        "feed_mb": round(feed.stat().st_size / MIB),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "exit": os.waitstatus_to_exitcode(status),
        **{key: summary[key] for key in ("items", "created", "unchanged", "failed")},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--string-mb", type=int, default=500)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        work = Path(work)
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}"}
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, env=env
        )
        json_feed, jsonl_feed = work / "string.json", work / "line.jsonl"
        write_json(json_feed, args.string_mb)
        print(measure(json_feed, env))
        json_feed.unlink()
        write_jsonl(jsonl_feed, args.size_mb)
        print(measure(jsonl_feed, env))


if __name__ == "__main__":
    main()
