"""The import tool's fixtures for every admin test module: a logged-in runner whose queued
tasks the test runs (defined in test_admin_import.py)."""

from tests.admin.test_admin_import import queue_unseen, runner  # noqa: F401
