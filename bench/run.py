"""Benchmark productsync against Oscar's importers and a bare bulk_create floor.

python bench/run.py [--products 10000] [--repeats 3] [--databases sqlite,postgresql]
python bench/run.py --memory 10000,100000,1000000

Every measurement is a whole process (Django start-up included) on a fresh database, run
--repeats times, the measurements interleaved so a noisy neighbour hits them all alike. The
table shows medians; ratios are taken pair by pair within each repeat, then the median.
"""

import argparse
import importlib.util
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import catalogue

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
MANAGE = str(ROOT / "manage.py")
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
PG_PREFIX = os.environ.get("BENCH_PG_PREFIX", "ps_bench")


@dataclass
class Case:
    """One thing measured: argv builder, an untimed preparation, and what a batch is."""

    name: str
    argv: callable
    batch: int  # products per batch (1: per product), for queries per batch
    prepare: callable = None
    # A re-sync of another version of the feed: the catalogue is synced from files["live"]
    # (prepare), then this version's bytes replace it there, the same source as a supplier's.
    feed: str | None = None
    runs: list = field(default_factory=list)  # run()'s figures per repeat
    queries_per_batch: float | None = None


def sync_argv(feed, batch_size, *extra):
    return [
        MANAGE,
        "sync_products",
        "--no-progress",
        "--source",
        str(feed),
        "--batch-size",
        str(batch_size),
        *extra,
    ]


def cases(files: dict, with_odin: bool) -> list[Case]:
    out = [
        Case(
            "oscar_import_catalogue", lambda f: [MANAGE, "oscar_import_catalogue", str(f["csv"])], 1
        )
    ]
    if with_odin:
        out.append(
            Case(
                "django-oscar-odin products_to_db",
                lambda f: [str(BENCH / "odin_import.py"), str(f["jsonl"])],
                500,
            )
        )
    for chunk in (1000, 15):
        out.append(
            Case(
                f"floor: bulk_create, chunks of {chunk}",
                lambda f, c=chunk: [str(BENCH / "floor.py"), str(f["csv"]), "--chunk", str(c)],
                chunk,
            )
        )
    for size in (15, 100, 500, 1000):
        out.append(
            Case(
                f"sync_products --batch-size {size}",
                lambda f, s=size: sync_argv(f["json"], s),
                size,
            )
        )
    # Re-syncs of new bytes read every item: a file of the same items (one more newline at
    # its end) finds each unchanged; with 1% of the prices changed, only those are validated
    # and written.
    for name, feed in (("unchanged items (fresh bytes)", "fresh"), ("1% changed", "changed")):
        out.append(
            Case(
                f"re-sync {name}, --batch-size 1000",
                lambda f: sync_argv(f["live"], 1000),
                1000,
                prepare=lambda f: sync_argv(f["live"], 1000),
                feed=feed,
            )
        )
    # A re-sync of the same file skips it (its digest is the last run's); --full reads and
    # checks every item; --compare also compares every product with its item by value.
    for size in (1000, 15):
        for extra in ((), ("--full",), ("--compare",)):
            out.append(
                Case(
                    f"re-sync unchanged{''.join(' ' + e for e in extra)}, --batch-size {size}",
                    lambda f, s=size, e=extra: sync_argv(f["json"], s, *e),
                    size,
                    prepare=lambda f, s=size: sync_argv(f["json"], s),
                )
            )
    return out


class Database:
    """A fresh database per measurement, copied from a migrated template."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        if kind == "sqlite":
            self.template = work / "template.sqlite3"
            self.path = work / "run.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            import psycopg

            self.psycopg = psycopg
            self.url = f"{PG_SERVER}/{PG_PREFIX}_run"

    def _pg(self, *statements: str) -> None:
        with self.psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def build_template(self) -> None:
        if self.kind == "sqlite":
            self.reset(template=False)
            run([MANAGE, "migrate", "--verbosity", "0"], self.url)
            shutil.copy(self.path, self.template)
        else:
            self._pg(
                f"DROP DATABASE IF EXISTS {PG_PREFIX}_template WITH (FORCE)",
                f"CREATE DATABASE {PG_PREFIX}_template",
            )
            run([MANAGE, "migrate", "--verbosity", "0"], f"{PG_SERVER}/{PG_PREFIX}_template")

    def reset(self, template: bool = True) -> None:
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            if template:
                shutil.copy(self.template, self.path)
        else:
            self._pg(
                f"DROP DATABASE IF EXISTS {PG_PREFIX}_run WITH (FORCE)",
                f"CREATE DATABASE {PG_PREFIX}_run TEMPLATE {PG_PREFIX}_template",
            )

    def drop(self) -> None:
        if self.kind == "sqlite":
            self.reset(template=False)
        else:
            self._pg(
                f"DROP DATABASE IF EXISTS {PG_PREFIX}_run WITH (FORCE)",
                f"DROP DATABASE IF EXISTS {PG_PREFIX}_template WITH (FORCE)",
            )


# The last line sync_products prints: "Run 3 succeeded: ...; 1.23s", the run's own time.
RUN_TIME = re.compile(r"^Run \d+ \w+.*; (\d+\.\d+)s$", re.MULTILINE)


def run(argv: list[str], database_url: str) -> tuple[float, int, float | None, float]:
    """Run one Python process to its end; return wall seconds, its peak RSS in KiB, for
    sync_products the run's own seconds (the process less Django's start-up and exit), and
    the CPU seconds it used."""
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen([PYTHON, *argv], cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            out.seek(0)
            err.seek(0)
            tail = out.read()[-1000:] + err.read()[-2000:]
            raise SystemExit(f"{' '.join(argv)} exited {child.returncode}:\n{tail}")
        out.seek(0)
        found = RUN_TIME.findall(out.read())
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, usage.ru_maxrss, float(found[-1]) if found else None, cpu


def case_prepare(case: Case, files: dict, url: str) -> None:
    """A case's untimed preparation: its first sync, then for a re-sync of another version
    of the feed that version's bytes put in place of the synced file."""
    if case.feed:
        shutil.copyfile(files["json"], files["live"])
    if case.prepare:
        run(case.prepare(files), url)
    if case.feed:
        shutil.copyfile(files[case.feed], files["live"])


def lookups_settled() -> int:
    """Products after which every class, category and partner of the catalogue has been seen:
    beyond it, more products add no one-off lookups or category creations."""
    seen, last, i = set(), 0, 0
    everything = len(catalogue.CLASSES) * len(catalogue.TOPICS) * len(catalogue.SUBTOPICS)
    while len(seen) < everything:
        item = catalogue.product(i)
        if item["categories"][0] not in seen:
            seen.add(item["categories"][0])
            last = i
        i += 1
    return last + 1


def count_queries(case: Case, db: Database, work: Path) -> float:
    """Queries per batch: the extra queries of a catalogue of n2 products over one of n1,
    divided by the extra batches. n1 is past the point where every shared row (class,
    category, partner) has been seen, so the one-off lookups cancel out. Counted in separate
    runs (bench/querycount.py), not in the timed ones."""
    unit = case.batch * math.ceil(100 / case.batch)
    n1 = unit * math.ceil(lookups_settled() / unit)
    sizes = (n1, n1 + unit)
    counts = []
    for n in sizes:
        files = catalogue.write_all(work / "feeds", n)
        db.reset()
        case_prepare(case, files, db.url)
        out = work / "queries.json"
        run([str(BENCH / "querycount.py"), str(out), *case.argv(files)], db.url)
        counts.append(json.loads(out.read_text())["queries"])
    batches = [math.ceil(n / case.batch) for n in sizes]
    return (counts[1] - counts[0]) / (batches[1] - batches[0])


def queries_table(kind: str, with_odin: bool, work: Path) -> str:
    db = Database(kind, work)
    db.build_template()
    lines = [
        f"Queries per batch ({kind})",
        "",
        "| what | batch | queries per batch |",
        "|---|---:|---:|",
    ]
    try:
        for case in cases(catalogue.write_all(work / "feeds", 1), with_odin):
            per = "1 product" if case.batch == 1 else f"{case.batch} products"
            lines.append(f"| {case.name} | {per} | {count_queries(case, db, work):g} |")
            print(lines[-1], file=sys.stderr, flush=True)
    finally:
        db.drop()
    return "\n".join(lines)


def measure(
    kind: str, n: int, repeats: int, work: Path, with_odin: bool, only: list[str] | None = None
) -> list[Case]:
    db = Database(kind, work)
    db.build_template()
    files = catalogue.write_all(work / "feeds", n)
    todo = [c for c in cases(files, with_odin) if not only or c.name in only]
    try:
        for case in todo:
            case.queries_per_batch = count_queries(case, db, work)
        for repeat in range(repeats):
            for case in todo:
                db.reset()
                case_prepare(case, files, db.url)
                case.runs.append(run(case.argv(files), db.url))
                seconds, rss = case.runs[-1][:2]
                print(
                    f"  [{kind} {repeat + 1}/{repeats}] {case.name}: {seconds:.2f}s, "
                    f"{rss / 1024:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        db.drop()
    return todo


def median_ratio(a: Case, b: Case) -> float:
    return statistics.median(x[0] / y[0] for x, y in zip(a.runs, b.runs, strict=True))


def table(kind: str, n: int, todo: list[Case]) -> str:
    oscar = next((c for c in todo if c.name == "oscar_import_catalogue"), None)
    floor = next((c for c in todo if c.name.startswith("floor")), None)
    lines = [
        f"{kind}, {n} products, median of {len(todo[0].runs)}",
        "",
        "| what | products/s | wall time (s) | peak RSS (MB) | queries per batch "
        f"| × oscar_import_catalogue | time ÷ floor ({floor.batch if floor else '–'}) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in todo:
        seconds = statistics.median(r[0] for r in case.runs)
        rss = statistics.median(r[1] for r in case.runs) / 1024
        per = "per product" if case.batch == 1 else f"per {case.batch}"
        by_oscar = f"{median_ratio(oscar, case):.1f}×" if oscar else "–"
        by_floor = f"{median_ratio(case, floor):.2f}" if floor else "–"
        lines.append(
            f"| {case.name} | {n / seconds:,.0f} | {seconds:.2f} | {rss:.0f} "
            f"| {case.queries_per_batch:g} ({per}) | {by_oscar} | {by_floor} |"
        )
    return "\n".join(lines)


def resync_lines(todo: list[Case]) -> str:
    """Each re-sync against the first sync of the same batch size: how many times faster, as
    whole processes and as runs (the time sync_products reports, start-up left out)."""
    first = {c.batch: c for c in todo if c.name.startswith("sync_products")}
    lines = []
    for case in (c for c in todo if c.name.startswith("re-sync") and c.batch in first):
        a, b = first[case.batch], case
        in_run = statistics.median(x[2] / y[2] for x, y in zip(a.runs, b.runs, strict=True))
        lines.append(
            f"- {case.name}: {median_ratio(a, b):.1f}× faster than the first sync as a whole "
            f"process; the run itself {in_run:.1f}× (first "
            f"{statistics.median(r[2] for r in a.runs):.2f}s, re-sync "
            f"{statistics.median(r[2] for r in b.runs):.3f}s)"
        )
    return "\n".join(lines)


def floor_lines(todo: list[Case]) -> str:
    """Each sync against the floor in chunks of its batch size and against
    oscar_import_catalogue, as whole processes, ratios pair by pair."""
    floors = {c.batch: c for c in todo if c.name.startswith("floor")}
    oscar = next((c for c in todo if c.name == "oscar_import_catalogue"), None)
    lines = []
    for case in (c for c in todo if c.name.startswith("sync_products") and c.batch in floors):
        by_oscar = f"; {median_ratio(oscar, case):.1f}× faster than {oscar.name}" if oscar else ""
        lines.append(
            f"- {case.name}: {median_ratio(case, floors[case.batch]):.2f}× the time of "
            f"{floors[case.batch].name} (its speed: "
            f"{median_ratio(floors[case.batch], case):.2f}×){by_oscar}"
        )
    return "\n".join(lines)


def batch_size_table(kind: str, todo: list[Case]) -> str:
    lines = [
        f"Batch Size Impact ({kind})",
        "",
        "| batch size | duration (s) | peak RSS (MB) | queries per batch |",
        "|---:|---:|---:|---:|",
    ]
    for case in todo:
        if case.name.startswith("sync_products"):
            seconds = statistics.median(r[0] for r in case.runs)
            rss = statistics.median(r[1] for r in case.runs) / 1024
            lines.append(
                f"| {case.batch} | {seconds:.2f} | {rss:.0f} | {case.queries_per_batch:g} |"
            )
    return "\n".join(lines)


def memory_check(
    sizes: list[int], kind: str, work: Path, batch_size: int, full_max: int, formats: list[str]
) -> str:
    """Peak RSS for streamed JSONL and JSON feeds of growing size: a whole sync on a fresh
    database up to full_max items, and for every size the feed path alone (bench/stream.py:
    read, pre-count, batch, validate, fingerprint; no database writes)."""
    db = Database(kind, work)
    db.build_template()
    lines = [
        f"Memory check ({kind}, --batch-size {batch_size})",
        "",
        "| items | format | feed size (MB) | what | wall time (s) | peak RSS (MB) |",
        "|---:|---|---:|---|---:|---:|",
    ]
    try:
        for n in sizes:
            feeds = work / "feeds"
            feeds.mkdir(parents=True, exist_ok=True)
            writers = {"jsonl": catalogue.write_jsonl, "json": catalogue.write_json}
            for fmt, write in ((f, writers[f]) for f in formats):
                path = feeds / f"catalogue-{n}.{fmt}"
                if not path.exists():
                    write(path, n)
                mb = path.stat().st_size / 2**20
                todo = [
                    (
                        "feed path (stream.py)",
                        [str(BENCH / "stream.py"), str(path), "--batch-size", str(batch_size)],
                    )
                ]
                if n <= full_max:
                    todo.insert(0, ("whole sync", sync_argv(path, batch_size)))
                for what, argv in todo:
                    db.reset()
                    seconds, rss = run(argv, db.url)[:2]
                    lines.append(
                        f"| {n:,} | {fmt} | {mb:.0f} | {what} | {seconds:.1f} | {rss / 1024:.0f} |"
                    )
                    print(lines[-1], file=sys.stderr, flush=True)
    finally:
        db.drop()
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "bench" / "out",
        help="where feeds and SQLite files go (default bench/out)",
    )
    parser.add_argument(
        "--queries-only", action="store_true", help="only count the queries per batch"
    )
    parser.add_argument("--only", help="case names separated by ';': measure only these cases")
    parser.add_argument("--memory", help="comma-separated feed sizes: run the memory check")
    parser.add_argument("--batch-size", type=int, default=1000, help="for --memory")
    parser.add_argument(
        "--full-max",
        type=int,
        default=100_000,
        help="for --memory: whole syncs up to this many items, the feed path alone above",
    )
    parser.add_argument(
        "--formats", default="jsonl,json", help="for --memory: feed formats (jsonl, json)"
    )
    args = parser.parse_args()
    kinds = args.databases.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.memory:
        sizes = [int(s) for s in args.memory.split(",")]
        for kind in kinds:
            print(
                memory_check(
                    sizes,
                    kind,
                    args.work / kind,
                    args.batch_size,
                    args.full_max,
                    args.formats.split(","),
                )
                + "\n"
            )
        return
    with_odin = importlib.util.find_spec("oscar_odin") is not None
    if not with_odin:
        print("django-oscar-odin is not installed (pip install -e '.[bench]'): left out\n")
    if args.queries_only:
        for kind in kinds:
            print(queries_table(kind, with_odin, args.work / kind) + "\n", flush=True)
        return
    for kind in kinds:
        only = args.only.split(";") if args.only else None
        todo = measure(kind, args.products, args.repeats, args.work / kind, with_odin, only)
        print(table(kind, args.products, todo) + "\n")
        print(resync_lines(todo) + "\n")
        print(floor_lines(todo) + "\n")
        print(batch_size_table(kind, todo) + "\n", flush=True)


if __name__ == "__main__":
    main()
