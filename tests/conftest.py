"""Shared fixtures: the database kind under test, feed files, and running the command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
DATA = Path(__file__).resolve().parent / "data"


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


def command_env(env: dict | None = None) -> dict:
    """The environment of a manage.py subprocess that uses the test database."""
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


def run_command(*args: str, env: dict | None = None, timeout: int = 120, input: str | None = None):
    """Run manage.py as a user would, in a subprocess, against the test database."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=command_env(env),
        cwd=ROOT,
        timeout=timeout,
        input=input,
    )
