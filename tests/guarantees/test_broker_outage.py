"""The planner of a queue run and a broker that goes away: it waits and goes on when the
broker comes back, or ends the run `failed` cleanly, every batch recorded, none left behind."""

import json
import socket
import subprocess
import time
import uuid

import pytest
from oscar.core.loading import get_model

from productsync.models import SyncBatch, SyncRun
from tests.conftest import product, qcluster, run_command, spawn_command, stop_group, wait_for

Product = get_model("catalogue", "Product")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test alone on a loopback port, so it can be killed."""

    def __init__(self, port: int) -> None:
        self.port, self.url, self.process = port, f"redis://127.0.0.1:{port}/0", None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._up, 10, "redis-server to listen")

    def _up(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def queue_env(url: str) -> dict:
    return {
        "DJANGO_SETTINGS_MODULE": "tests.fault_settings",
        "Q_REDIS_URL": url,
        "Q_CLUSTER_NAME": f"ps18-{uuid.uuid4().hex[:8]}",
        "Q_WORKERS": "2",
        "PRODUCTSYNC_OVERRIDES": json.dumps({"STALE_AFTER": 2}),
    }


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_never_answers_fails_the_run_cleanly(write_feed):
    feed = write_feed([product(f"B{i}") for i in range(30)])
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = run_command(
        *("sync_products", "--source", feed, "--workers", "queue", "--batch-size", "10"),
        "--json",
        env=queue_env(url),
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    run = SyncRun.objects.get()
    assert run.status == "failed"
    assert run.error.startswith("the django-q2 broker refused batch 1 for 2s: ")
    assert run.error.endswith("batches from 1 on were not planned")
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "failed"
    assert not SyncBatch.objects.exists()  # nothing left pending or running
    assert (run.planned_batches, run.items) == (0, 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_redis_killed_and_restarted_mid_run_the_run_completes(write_feed, tmp_path):
    feed = write_feed([product(f"R{i:04d}") for i in range(1500)])
    redis = PrivateRedis(free_port())
    redis.start()
    env = queue_env(redis.url)
    planner = spawn_command(
        *("sync_products", "--source", feed, "--workers", "queue", "--batch-size", "5"),
        "--no-progress",
        env=env,
        log=tmp_path / "planner.log",
    )
    try:
        wait_for(lambda: SyncBatch.objects.count() >= 20, 60, "20 planned batches")
        redis.kill()  # the tasks enqueued so far are lost with it
        time.sleep(1.5)
        redis.start()
        wait_for(
            lambda: SyncRun.objects.filter(planned_batches__isnull=False).exists(),
            120,
            "the planner to plan every batch",
            tmp_path / "planner.log",
        )
        with qcluster(env, tmp_path / "qcluster.log"):
            planner.wait(timeout=180)
    finally:
        stop_group(planner)
        redis.kill()
    log = (tmp_path / "planner.log").read_text()
    assert planner.returncode == 0, log[-3000:]
    assert "trying again" in log  # it waited for the broker
    run = SyncRun.objects.get()
    assert (run.status, run.items, run.created, run.batches) == ("succeeded", 1500, 1500, 300)
    assert Product.objects.count() == 1500
    assert not run.batch_set.exclude(status="succeeded").exists()
