"""Peak RSS of the admin's import tool against feed size: storing an uploaded feed (what the
upload view does once Django has streamed the request body to a temporary file) and the
worker's preview of it (a dry run recording every item with its changes).

python bench/preview_memory.py [--sizes 10000,100000] [--batch-size 1000]

Each step is a whole process on one SQLite database in a temporary folder; the figure is
the process's peak RSS (ru_maxrss), printed with its growth over the smallest size.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import catalogue

ROOT = Path(__file__).resolve().parent.parent

STEP = """
import json, resource, sys
sys.path.insert(0, {root!r})
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
import django
django.setup()
from django.core.files import File
from productsync.services import sync_upload_execute, upload_store
step, path, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
if step == "upload":
    with open(path, "rb") as feed:
        stored = upload_store(File(feed, name="feed.jsonl"))
    out = {{"name": stored.name, "sha256": stored.sha256, "filename": stored.filename}}
else:
    upload = json.loads(path)
    from django.core.files.storage import default_storage
    run = sync_upload_execute(default_storage.path(upload["name"]), batch, True, upload=upload)
    out = {{"run": run.pk, "items": run.items, "status": run.status}}
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def step(env: dict, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", STEP.format(root=str(ROOT)), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--batch-size", default="1000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "MEDIA_ROOT": f"{tmp}/media",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True
        )
        base = None
        for size in map(int, args.sizes.split(",")):
            feed = Path(tmp) / f"feed-{size}.jsonl"
            catalogue.write_jsonl(feed, size)
            web = step(env, "upload", str(feed), args.batch_size)
            worker = step(env, "preview", json.dumps(web), args.batch_size)
            base = base or (web["rss_mb"], worker["rss_mb"])
            print(
                f"{size:>9} items ({feed.stat().st_size / 1e6:.0f} MB): "
                f"upload {web['rss_mb']:.0f} MB"
                f" (+{web['rss_mb'] - base[0]:.0f}), preview {worker['rss_mb']:.0f} MB"
                f" (+{worker['rss_mb'] - base[1]:.0f}); run {worker['run']} {worker['status']},"
                f" {worker['items']} items",
                flush=True,
            )
            feed.unlink()


if __name__ == "__main__":
    main()
