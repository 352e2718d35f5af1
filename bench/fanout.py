"""Benchmark sync_products' django-q2 fan-out: local, one qcluster, two qclusters (PostgreSQL)."""

import argparse
import contextlib
import inspect
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import catalogue
import psycopg
import redis
import run as bench

# Not run.py's prefix: the two benchmarks may run at the same time on one server.
bench.PG_PREFIX = "ps_fanout"
REDIS_SERVER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CLUSTER_NAME = "ps_fanout"
READY_TIMEOUT = 120  # seconds for a qcluster to log that it is running
STOP_GRACE = 30


@dataclass
class Case:
    """One way to run the same sync: locally (no cluster) or queued to `clusters` qclusters."""

    name: str
    clusters: int
    runs: list = field(default_factory=list)  # bench.run()'s figures (the planner's) per repeat
    cpu: list = field(default_factory=list)  # (clusters', PostgreSQL's CPU seconds) per repeat
    startups: list = field(default_factory=list)  # seconds until every cluster was running
    shares: list = field(default_factory=list)  # batches written per cluster, per repeat


def cluster_start(i: int, env: dict, work: Path) -> subprocess.Popen:
    """Start qcluster number i in its own process group, logging to work."""
    with open(work / f"qcluster{i}.log", "w") as log:
        return subprocess.Popen(
            [bench.PYTHON, bench.MANAGE, "qcluster"],
            cwd=bench.ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def clusters_wait(procs: list[subprocess.Popen], work: Path) -> None:
    """Wait until every cluster has logged "running", so its start-up is not timed."""
    deadline = time.monotonic() + READY_TIMEOUT
    for i, proc in enumerate(procs, start=1):
        log = work / f"qcluster{i}.log"
        while " running." not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"qcluster {i} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)


def clusters_stop(procs: list[subprocess.Popen]) -> float:
    """SIGTERM to each leader only (django-q2 stops its sentinel and workers in order; they
    die mid-step on a SIGTERM of their own), then SIGKILL whatever is left in its group.
    Return the CPU seconds the clusters used (a leader's usage includes its workers')."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    cpu = 0.0
    for proc in procs:
        deadline = time.monotonic() + STOP_GRACE
        while (waited := os.wait4(proc.pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                print(f"qcluster {proc.pid} ignored SIGTERM: killed", file=sys.stderr)
                os.killpg(proc.pid, signal.SIGKILL)
                waited = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(waited[1])
        cpu += waited[2].ru_utime + waited[2].ru_stime
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return cpu


def _proc_stat(pid) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = _proc_stat(stat.parent.name)
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu(url: str) -> float:
    """CPU seconds of the PostgreSQL server's exited backends so far (the postmaster's
    children time, from /proc: the server runs on this machine)."""
    with psycopg.connect(url) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    fields = _proc_stat(_proc_stat(backend)[1])  # the postmaster, the backend's parent
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def batches_per_cluster(url: str, procs: list[subprocess.Popen]) -> list[int]:
    """Batches of the last run written by each cluster, told apart by its workers' group."""
    with psycopg.connect(url) as conn:
        claims = conn.execute(
            "SELECT claimed_by FROM productsync_syncbatch"
            " WHERE run_id = (SELECT max(id) FROM productsync_syncrun)"
        ).fetchall()
    groups = Counter()
    for (claimed_by,) in claims:
        try:
            groups[os.getpgid(int(claimed_by.rsplit(":", 2)[1]))] += 1
        except (ProcessLookupError, IndexError, ValueError):
            groups[None] += 1  # a worker that is gone, or no claim at all
    return [groups[proc.pid] for proc in procs]


def check(url: str, n: int, workers: str) -> None:
    """Fail loudly unless the one run succeeded with every product created, in that mode."""
    with psycopg.connect(url) as conn:
        runs = conn.execute(
            "SELECT status, workers, items, created, failed FROM productsync_syncrun"
        ).fetchall()
        products = conn.execute("SELECT count(*) FROM catalogue_product").fetchone()[0]
    if runs != [("succeeded", workers, n, n, 0)] or products != n:
        raise SystemExit(
            f"wrong result: runs (status, workers, items, created, failed) {runs}, "
            f"{products} products, expected one succeeded {workers} run of {n}"
        )


def measure(case: Case, argv: list[str], db: bench.Database, n: int, work: Path) -> None:
    db.reset()
    redis.from_url(os.environ["Q_REDIS_URL"]).flushdb()  # no stale task from an earlier case
    env = {**os.environ, "DATABASE_URL": db.url, "DEBUG": "0", "PYTHONWARNINGS": "ignore"}
    procs, clusters_cpu, idle_cpu = [], 0.0, 0.0
    server_cpu = postgres_cpu(db.url)
    try:
        started = time.perf_counter()
        for i in range(1, case.clusters + 1):
            procs.append(cluster_start(i, env, work))
        clusters_wait(procs, work)
        case.startups.append(time.perf_counter() - started)
        idle_cpu = sum(group_cpu(proc.pid) for proc in procs)  # their start-up
        extra = ["--workers", "queue"] if case.clusters else []
        case.runs.append(bench.run([*argv, *extra], db.url))
        if procs:
            case.shares.append(batches_per_cluster(db.url, procs))
    finally:
        clusters_cpu = clusters_stop(procs)
    # The backends of the run have exited by now: the planner's and the clusters'.
    case.cpu.append((clusters_cpu - idle_cpu, postgres_cpu(db.url) - server_cpu))
    check(db.url, n, "queue" if case.clusters else "local")


def table(cases: list[Case], args: argparse.Namespace) -> str:
    local = cases[0]
    batches = -(-args.products // args.batch_size)
    lines = [
        f"PostgreSQL, {args.products:,} products, --batch-size {args.batch_size} "
        f"({batches} batches), Redis broker, median of {args.repeats}",
        "",
        "| what | qcluster × workers | wall time (s) | products/s | speed-up vs local "
        "| batches per cluster (last) | qcluster start-up, untimed (s) "
        "| CPU s: sync_products | CPU s: clusters | CPU s: PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        seconds = statistics.median(r[0] for r in case.runs)
        clusters = f"{case.clusters} × {args.q_workers}" if case.clusters else "–"
        shares = " / ".join(map(str, case.shares[-1])) if case.shares else "–"
        startup = f"{statistics.median(case.startups):.1f}" if case.clusters else "–"
        lines.append(
            f"| {case.name} | {clusters} | {seconds:.2f} | {args.products / seconds:,.0f} "
            f"| {bench.median_ratio(local, case):.2f}× | {shares} | {startup} "
            f"| {statistics.median(r[3] for r in case.runs):.1f} "
            f"| {statistics.median(c[0] for c in case.cpu):.1f} "
            f"| {statistics.median(c[1] for c in case.cpu):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """--batch-size 500 by default: in queue mode each batch is one task, whose overhead
    (enqueue, claim, report, the planner's poll) is paid per batch, so small batches cost
    more there than locally; local runs level off from about 500 (docs/benchmarks.md); and
    50,000 products still make 100 tasks, enough to keep 2 × 2 workers busy to a short tail.

    The time is the wall time of the sync_products process (the planner in queue mode), Django
    start-up included, on a fresh database; clusters are started and running before the clock
    starts. Repeats are interleaved; speed-ups are taken pair by pair, then the median."""
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog=inspect.cleandoc(main.__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--q-workers", type=int, default=2, help="workers per qcluster")
    parser.add_argument(
        "--redis-db", type=int, default=9, help="Redis database, flushed before each case"
    )
    parser.add_argument("--work", type=Path, default=bench.ROOT / "bench" / "out" / "fanout")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    # Read by every process: the planner (through bench.run) and the clusters.
    os.environ["Q_REDIS_URL"] = f"{REDIS_SERVER}/{args.redis_db}"
    os.environ["Q_CLUSTER_NAME"] = CLUSTER_NAME
    os.environ["Q_WORKERS"] = str(args.q_workers)
    files = catalogue.write_all(args.work / "feeds", args.products)
    argv = bench.sync_argv(files["json"], args.batch_size)
    cases = [Case("local", 0), Case("queue, 1 qcluster", 1), Case("queue, 2 qclusters", 2)]
    db = bench.Database("postgresql", args.work)
    db.build_template()
    try:
        for repeat in range(1, args.repeats + 1):
            for case in cases:
                measure(case, argv, db, args.products, args.work)
                print(
                    f"  [{repeat}/{args.repeats}] {case.name}: {case.runs[-1][0]:.2f}s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        db.drop()
        redis.from_url(os.environ["Q_REDIS_URL"]).flushdb()
    print(table(cases, args))


if __name__ == "__main__":
    main()
