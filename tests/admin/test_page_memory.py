"""The run page of a preview reads what it shows: 20 items with 4 MiB descriptions cost the
web process a few MB, not the 80 MB of their changes, however the changes were stored."""

import tracemalloc

import pytest
from django.urls import reverse

from productsync.models import SyncItem, SyncRun
from productsync.services import sync_run_execute
from tests.conftest import product

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


def page_peak(client, django_user_model, run: SyncRun) -> tuple[str, int]:
    """The run page as an admin sees it, and the most memory Python held while serving it."""
    client.force_login(django_user_model.objects.create_superuser("admin", "a@example.com", "x"))
    url = reverse("admin:productsync_syncrun_change", args=[run.pk])
    client.get(url)  # templates, translations and the session loaded once, outside the count
    tracemalloc.start()
    try:
        response = client.get(url)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    return response.content.decode(), peak


def test_a_preview_of_huge_descriptions_shows_their_start_in_bounded_memory(
    client, django_user_model, write_feed
):
    sync_run_execute(write_feed([product(f"BIG-{n}") for n in range(20)]))
    items = [product(f"BIG-{n}", description=f"{n}" + "d" * 4 * MIB) for n in range(20)]
    # Every description changed: a mass change let through, or the guard would stop it.
    run = sync_run_execute(
        write_feed(items, "feed.jsonl"), dry_run=True, diff=True, allow_mass_change=True
    )
    assert run.updated == 20

    page, peak = page_peak(client, django_user_model, run)

    assert page.count("&#x27;7ddddd") == 1 and "BIG-19" in page
    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB"
    # What a preview keeps of each value is bounded too.
    stored = SyncItem.objects.get(run=run, upc="BIG-7").changes
    description = next(new for field, _, new in stored if field == "description")
    assert description.startswith("7ddd") and len(description) <= 2 * SyncItem.SHOWN


def test_changes_stored_whole_are_not_loaded_by_the_page(client, django_user_model):
    run = SyncRun.objects.create(source="feed.json", batch_size=100, dry_run=True, diff=True)
    huge = [["description", None, "d" * 4 * MIB]]
    SyncItem.objects.bulk_create(
        SyncItem(run=run, position=n, upc=f"BIG-{n}", outcome="created", changes=huge)
        for n in range(20)
    )
    SyncItem.objects.create(
        run=run, position=20, upc="SMALL", outcome="updated", changes=[["title", "A", "B"]]
    )
    SyncRun.objects.filter(pk=run.pk).update(item_rows=21)

    page, peak = page_peak(client, django_user_model, run)

    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB"
    assert page.count("too large to show here") == 20
    assert "&#x27;A&#x27;" in page and "&#x27;B&#x27;" in page
