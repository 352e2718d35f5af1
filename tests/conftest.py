"""Shared fixtures: the database kind under test, feed files, and running the command."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Beside the project; a worktree elsewhere names it in SHARED_DATA.
SHARED_DATA = Path(os.environ.get("SHARED_DATA") or ROOT.parent / "shared" / "data")


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, the real catalogues of other projects, read where they lie:
    the test skips where that folder is absent, and fails instead when CI is set."""
    if not SHARED_DATA.is_dir():
        message = f"needs the shared catalogue files in {SHARED_DATA}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA.joinpath(*parts)


def artefacts(tmp_path: Path) -> Path:
    """Where screenshots are kept: PRODUCTSYNC_ARTEFACTS, else the test's own folder."""
    folder = Path(os.environ.get("PRODUCTSYNC_ARTEFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pytest_configure(config):
    if os.environ.get("PRODUCTSYNC_REQUIRE_POSTGRES") == "1":
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            raise pytest.UsageError(
                f"PRODUCTSYNC_REQUIRE_POSTGRES=1 but the database is {engine}; set DATABASE_URL"
            )


def pytest_collection_modifyitems(config, items):
    required = os.environ.get("PRODUCTSYNC_REQUIRE_POSTGRES") == "1"
    for item in items:
        if "postgres" in item.keywords and not required:
            item.add_marker(
                pytest.mark.skipif(
                    "postgresql" not in os.environ.get("DATABASE_URL", "")
                    and not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                    reason="needs PostgreSQL: set DATABASE_URL=postgres://...",
                )
            )


@pytest.fixture
def is_postgres(db) -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def write_feed(tmp_path):
    """Write items as a feed file (.json array or .jsonl) and return its path as a string."""

    def write(items, name="feed.json") -> str:
        path = tmp_path / name
        if name.endswith(".jsonl"):
            path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
        else:
            path.write_text(json.dumps(items), encoding="utf-8")
        return str(path)

    return write


def productsync_migrate(target: str | None = None):
    """Migrate productsync's schema back to target (a migration's name) or, None, forward
    to the latest, as `migrate` does: change capture's triggers taken away before and put
    back after. Returns the historical apps at target."""
    from django.db.migrations.executor import MigrationExecutor

    from productsync.services import capture_install, capture_remove

    capture_remove()
    executor = MigrationExecutor(connection)
    nodes = [("productsync", target)] if target else executor.loader.graph.leaf_nodes("productsync")
    executor.migrate(nodes)
    capture_install()
    return MigrationExecutor(connection).loader.project_state(nodes).apps


def product(upc: str, **fields) -> dict:
    """A valid feed item; fields override the defaults."""
    item = {
        "upc": upc,
        "title": f"Product {upc}",
        "product_class": "Book",
        "description": "<p>A book.</p>",
        "categories": ["Books > Computing"],
        "stockrecords": [
            {
                "partner": "Acme Books",
                "partner_sku": f"SKU-{upc}",
                "price": "10.00",
                "currency": "GBP",
                "num_in_stock": 5,
            }
        ],
    }
    item.update(fields)
    return item


def subprocess_env(env: dict | None = None) -> dict:
    """The environment for a subprocess (manage.py, qcluster) that uses the test database."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    full_env = {**os.environ, **(env or {})}
    if database["ENGINE"].endswith("sqlite3"):
        full_env["DATABASE_URL"] = f"sqlite:///{database['NAME']}"
    else:
        full_env["DATABASE_URL"] = (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        )
    return full_env


def run_command(*args: str, env: dict | None = None, timeout: int = 120, capture=True, **kw):
    """Run manage.py as a user would, in a subprocess, against the test database."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=capture,
        text=True,
        env=subprocess_env(env),
        cwd=ROOT,
        timeout=timeout,
        **kw,
    )


def spawn_command(*args: str, env: dict | None = None, log: Path | None = None):
    """Start manage.py in the background in its own process group (so the test can signal
    it with its children); its output goes to log, or is captured."""
    out = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        stdout=out,
        stderr=subprocess.STDOUT if log else subprocess.PIPE,
        text=True,
        env=subprocess_env(env),
        cwd=ROOT,
        start_new_session=True,
    )


def stop_group(proc: subprocess.Popen, grace: float = 30) -> None:
    """Stop a process started by spawn_command, then anything it forked that is left."""
    try:
        # Only the leader: a qcluster stops its own sentinel and workers in order.
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# The django-q2 broker of the queue tests (each cluster takes a name of its own).
REDIS_URL = "redis://127.0.0.1:6379/7"


@pytest.fixture
def cluster_env():
    """The environment of a qcluster (and of processes enqueueing to it) on a queue of its own."""
    name = f"ps7-{os.urandom(4).hex()}"
    yield {
        "Q_REDIS_URL": REDIS_URL,
        "Q_CLUSTER_NAME": name,
        "Q_WORKERS": "2",
        "Q_TIMEOUT": "60",
        "Q_RETRY": "70",
        "PRODUCTSYNC_STALE_AFTER": "5",
    }
    redis.from_url(REDIS_URL).delete(f"django_q:{name}:q")


@contextlib.contextmanager
def qcluster(env: dict, log: Path):
    """A real `manage.py qcluster` for the duration of the block."""
    proc = spawn_command("qcluster", env=env, log=log)
    try:
        yield proc
    finally:
        stop_group(proc)


@contextlib.contextmanager
def qcluster_ready(env: dict, log: Path, django_db_blocker):
    """A real `manage.py qcluster` for the duration of the block, once it reports itself
    running as the admin sees it (for a module-scoped fixture: the database unblocked)."""
    from productsync.services import sync_queue_state

    with qcluster(env, log) as proc:
        with django_db_blocker.unblock():
            wait_for(
                lambda: proc.poll() is not None or sync_queue_state() == "running",
                60,
                "the qcluster to report itself running",
                log,
            )
        assert proc.poll() is None, log.read_text()
        yield proc


def wait_for(predicate, timeout: float, what: str, log: Path | None = None, interval=0.05):
    """Poll predicate until it returns something true; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tail}")


@pytest.fixture
def http_server(settings):
    """Start real HTTP feed servers on 127.0.0.1 (see tests/httpserver.py), with short HTTP
    timeouts and no retry backoff: `http_server(HandlerClass)` returns a started server."""
    from tests.httpserver import FeedHandler, feed_server_start, feed_server_stop

    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "HTTP_RETRIES": 2,
        "HTTP_BACKOFF": 0,
        "HTTP_TIMEOUT": (2, 1),
    }
    servers = []

    def start(handler=FeedHandler):
        servers.append(feed_server_start(handler))
        return servers[-1]

    yield start
    for httpd in servers:
        feed_server_stop(httpd)


@pytest.fixture
def browser(tmp_path):
    """Debian's headless Chromium driven by Selenium. Outside CI a machine without it skips
    the test, saying how to install it; with CI set that is an error."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        message = (
            f"needs Debian's Chromium and ChromeDriver ({', '.join(missing)} missing): "
            "apt-get install chromium chromium-driver"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        # Nothing off loopback (Oscar's storefront layout names a CDN's jQuery).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()
