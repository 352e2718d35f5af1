"""A run's mode is decided once: the admin's "Sync now" runs what the command runs, and a
queue run records what a local run of the same feed records, under each setting."""

import json
import uuid
from io import StringIO

import pytest
import redis
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from oscar.core.loading import get_model

from productsync.models import SyncedProduct, SyncRun
from productsync.services import sync_batch_execute
from tests.conftest import REDIS_URL, product, qcluster, run_command
from tests.services.test_fanout import queued_run

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")

# An image on loopback, which is refused unless allow-listed: fetching it notes a warning
# without any request leaving the machine.
IMAGE = "http://127.0.0.1:9/cover.png"


def admin_sync_now(client, django_user_model, settings) -> SyncRun:
    """Press "Sync now" as a user with the run permission, then run the task it queued the
    way a django-q2 worker does: its function called with its arguments."""
    user = django_user_model.objects.create_user(username="runner", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="productsync",
            codename__in=["view_syncrun", "view_syncbatch", "view_syncfailure", "run_sync"],
        )
    )
    client.force_login(user)
    # A per-process cache for django-q2's status: the admin queues without seeing a cluster.
    settings.CACHES = {
        **settings.CACHES,
        "productsync_q": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    client.post(reverse("admin:productsync_syncrun_start"))
    task = OrmQ.objects.get().task
    return SyncRun.objects.get(pk=import_string(task["func"])(*task["args"], **task["kwargs"]))


# Each kind of run a setting makes, with a feed of that kind and the batch size it implies.
KINDS = {
    "catalogue": ({}, [product("M1", title="Renamed")], (15, False)),
    "partial": ({"PARTIAL": True}, [{"upc": "M1", "title": "Renamed"}], (5000, True)),
    "stock-file": (
        {"PARTNER": "Acme Books"},
        [{"partner": "Acme Books", "partner_sku": "SKU-M1", "num_in_stock": 3}],
        (5000, True),
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_sync_now_in_the_admin_runs_what_the_command_runs(
    kind, client, django_user_model, settings, write_feed
):
    overrides, items, (batch_size, partial) = KINDS[kind]
    call_command(
        "sync_products", "--source", write_feed([product("M1")], "seed.json"), stdout=StringIO()
    )
    feed = write_feed(items)
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "SOURCE": feed,
        "BATCH_SIZE": 15,
        "PARTIAL_BATCH_SIZE": 5000,
        **overrides,
    }
    call_command("sync_products", "--no-progress", stdout=StringIO())
    command = SyncRun.objects.get(source=feed)
    admin = admin_sync_now(client, django_user_model, settings)
    assert (admin.trigger, admin.source) == ("admin", feed)
    for run in (command, admin):
        assert (run.status, run.batch_size, run.partial) == ("succeeded", batch_size, partial)


@pytest.mark.django_db
@pytest.mark.parametrize("fetch", [False, True])
def test_a_queue_worker_fetches_images_only_when_fetch_images_is_on(fetch, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "FETCH_IMAGES": fetch}
    run = queued_run([product(f"I{i}", images=[IMAGE]) for i in range(3)], 2)
    for batch in run.batch_set.order_by("number"):
        sync_batch_execute(batch.pk)
    run.refresh_from_db()
    assert (run.status, run.created) == ("succeeded", 3)
    noted = [note for note in run.notes if "cover.png" in note]
    assert (run.warnings, len(noted)) == ((3, 3) if fetch else (0, 0))


# Each setting a run's kind or its after-commit step depends on, with a feed it shows in.
SEED = [product(f"P{i}", images=[]) for i in range(6)]
CASES = {
    "catalogue": ({}, [product(f"P{i}", title=f"New {i}") for i in range(5)]),
    "partial": (
        {"PARTIAL": True},
        [{"upc": f"P{i}", "title": f"Partial {i}", "price": "3.50"} for i in range(5)],
    ),
    "images": ({"FETCH_IMAGES": True}, [product(f"P{i}", images=[IMAGE]) for i in range(5)]),
    "no-images": ({"FETCH_IMAGES": False}, [product(f"P{i}", images=[IMAGE]) for i in range(5)]),
    "hide-missing": ({"HIDE_MISSING": True}, [product(f"P{i}") for i in range(5)]),
}
RECORDED = (
    "status",
    "partial",
    "batch_size",
    "items",
    "created",
    "updated",
    "unchanged",
    "repaired",
    "failed",
    "hidden",
    "warnings",
    "batches",
)


def shop() -> list[tuple]:
    """What a shopper sees of the catalogue."""
    return sorted(
        Product.objects.values_list(
            "upc", "title", "is_public", "stockrecords__price", "stockrecords__num_in_stock"
        )
    )


def sync_as_user(feed: str, env: dict, *args: str) -> SyncRun:
    result = run_command("sync_products", "--source", feed, "--no-progress", *args, env=env)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return SyncRun.objects.order_by("pk").last()


def seeded(tmp_path, items: list[dict], env: dict) -> str:
    """A fresh catalogue of SEED synced from the feed file, then the file holding items."""
    SyncRun.objects.all().delete()
    SyncedProduct.objects.all().delete()
    Product.objects.all().delete()
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps(SEED))
    seed_env = {**env, "PRODUCTSYNC_OVERRIDES": json.dumps({"BATCH_SIZE": 2})}
    assert sync_as_user(str(feed), seed_env).created == len(SEED)
    feed.write_text(json.dumps(items))
    return str(feed)


def outcome(run: SyncRun) -> tuple:
    notes = sorted(run.notes)
    return tuple(getattr(run, name) for name in RECORDED), notes, shop()


@pytest.fixture
def cluster_env():
    name = f"ps23-{uuid.uuid4().hex[:8]}"
    yield {
        "DJANGO_SETTINGS_MODULE": "tests.fault_settings",
        "Q_REDIS_URL": REDIS_URL,
        "Q_CLUSTER_NAME": name,
        "Q_WORKERS": "2",
        "Q_TIMEOUT": "60",
        "Q_RETRY": "70",
    }
    redis.from_url(REDIS_URL).delete(f"django_q:{name}:q")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", CASES)
def test_a_queue_run_records_what_a_local_run_records(case, cluster_env, tmp_path):
    overrides, items = CASES[case]
    settings = {"BATCH_SIZE": 2, "PARTIAL_BATCH_SIZE": 3, **overrides}
    env = {**cluster_env, "PRODUCTSYNC_OVERRIDES": json.dumps(settings)}
    local = outcome(sync_as_user(seeded(tmp_path, items, env), env))
    feed = seeded(tmp_path, items, env)
    with qcluster(env, tmp_path / "qcluster.log"):
        queued = sync_as_user(feed, env, "--workers", "queue")
    assert queued.workers == "queue"
    assert outcome(queued) == local
