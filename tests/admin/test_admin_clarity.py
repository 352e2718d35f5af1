"""The run pages as a shop team reads them: one word per status, no full bar for a run that did
nothing, no retry of a preview, a rate over the batches' own time, notes grouped by kind, and
a run list that fits a 1,400 px window."""

import contextlib
from datetime import timedelta

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By

from productsync.exceptions import ProductSyncError
from productsync.models import SyncBatch, SyncRun
from productsync.services import sync_run_execute
from productsync.services.history import run_note_warnings
from productsync.writer.images import ImageWarning
from tests.admin.test_admin import VIEW, staff
from tests.conftest import artefacts, product, productsync_migrate


def url(name: str, *args) -> str:
    return reverse(f"admin:productsync_syncrun_{name}", args=args)


@pytest.mark.django_db
def test_a_run_with_failed_items_is_completed_with_failures_not_partial(admin_client, write_feed):
    run = sync_run_execute(write_feed([product("A"), product("B", title="")]))
    assert run.status == "completed_with_failures"
    html = admin_client.get(url("change", run.pk)).content.decode()
    assert ">completed with failures</span>" in html
    assert ">partial</span>" not in html


@pytest.mark.django_db(transaction=True)
def test_stored_partial_statuses_are_renamed_by_the_migration():
    old = productsync_migrate("0010_state_halves")
    try:
        OldRun = old.get_model("productsync", "SyncRun")
        failed_some = OldRun.objects.create(source="f.json", batch_size=5, status="partial")
        fine = OldRun.objects.create(source="f.json", batch_size=5, status="succeeded")
    finally:
        productsync_migrate()
    runs = SyncRun.objects.in_bulk([failed_some.pk, fine.pk])
    assert runs[failed_some.pk].status == "completed_with_failures"
    assert runs[fine.pk].status == "succeeded"


@pytest.mark.django_db
def test_a_failed_run_that_read_nothing_shows_no_full_bar(admin_client, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"upc": ', encoding="utf-8")
    with contextlib.suppress(ProductSyncError):
        sync_run_execute(str(broken))
    run = SyncRun.objects.get()
    assert (run.status, run.items) == ("failed", 0)
    html = admin_client.get(url("change", run.pk)).content.decode()
    assert "100%" not in html
    assert 'id="ps-meter-fill"' not in html


@pytest.mark.django_db
def test_a_preview_with_failed_items_offers_no_retry(admin_client, write_feed):
    run = sync_run_execute(write_feed([product("A"), product("B", title="")]), dry_run=True)
    assert run.failed == 1
    html = admin_client.get(url("change", run.pk)).content.decode()
    assert 'id="ps-retry"' not in html
    admin_client.post(url("retry", run.pk))
    assert not SyncRun.objects.filter(retry_of=run).exists()


@pytest.mark.django_db
def test_the_rate_counts_the_batches_own_time_not_what_came_after(admin_client):
    run = SyncRun.objects.create(source="f.json", batch_size=10, status="succeeded", items=20)
    # Images fetched after the batches made the run last 40 s; its batches took 0.05 s.
    run.finished_at = run.started_at + timedelta(seconds=40)
    run.save()
    for number, duration in ((1, 0.02), (2, 0.03)):
        SyncBatch.objects.create(
            run=run,
            number=number,
            first_position=(number - 1) * 10,
            last_position=number * 10 - 1,
            status="succeeded",
            items=10,
            duration=duration,
        )
    html = admin_client.get(url("change", run.pk)).content.decode()
    assert "400.0 items/s" in html
    assert "0.5 items/s" not in html


@pytest.mark.django_db
def test_images_not_fetched_are_one_note_with_counts_and_the_first_few_named(
    admin_client, write_feed
):
    feed = [product(f"P{n}", images=[f"missing-{n}.png"]) for n in range(8)]
    feed.append(product("Q", images=["../outside.png"]))
    run = sync_run_execute(write_feed(feed))
    assert run.warnings == 9
    html = admin_client.get(url("change", run.pk)).content.decode()
    assert (
        "9 images not fetched: 8 file not readable, "
        "1 a relative image path must stay inside the feed&#x27;s folder"
    ) in html
    assert html.count("not fetched (") == 5
    assert "and 4 more: " in html

    # The rest in a download: every image not fetched, one line each, as an attachment.
    download = url("images", run.pk)
    assert f'href="{download}"' in html
    response = admin_client.get(download)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-images.txt"'
    lines = response.content.decode().splitlines()
    assert len(lines) == 9 and all(" not fetched (" in line for line in lines)
    assert {line.split("'")[3] for line in lines} == {*(f"P{n}" for n in range(8)), "Q"}


@pytest.mark.django_db
def test_the_images_download_is_bounded_and_for_viewers_only(client, django_user_model):
    run = SyncRun.objects.create(source="f.json", batch_size=10, status="succeeded")
    warnings = [
        ImageWarning(f"image 'i{n}.png' of product 'P{n}' not fetched", "gone") for n in range(600)
    ]
    run_note_warnings(run, warnings)
    run.refresh_from_db()
    assert len(run.image_failures["named"]) == 500  # the run's row stays small
    assert len(run.notes) == 20

    download = url("images", run.pk)
    assert client.get(download).status_code == 302  # to the login page
    client.force_login(staff(django_user_model, "clerk"))
    assert client.get(download).status_code == 403
    client.force_login(staff(django_user_model, "viewer", *VIEW))
    lines = client.get(download).content.decode().splitlines()
    assert lines[:2] == [w.text for w in warnings[:2]]
    assert lines[499:] == [
        warnings[499].text,
        "and 100 images more not fetched, counted but not kept",
    ]
    assert client.get(url("images", 999999)).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_run_list_fits_1400_px_with_the_sidebar_open(
    live_server, browser, admin_user, write_feed, tmp_path
):
    long_source = "/srv/feeds/" + "a-very-long-supplier-folder-name/" * 4 + "catalogue.json"
    for number in range(3):
        SyncRun.objects.create(
            source=long_source,
            batch_size=1000,
            status="completed_with_failures",
            items=123456,
            created=12345,
            updated=111111,
            failed=9,
            dry_run=number == 1,
        )
    browser.get(live_server.url + url("changelist"))
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert browser.find_element(By.ID, "nav-sidebar").is_displayed()
    browser.execute_async_script("document.fonts.ready.then(arguments[0])")  # laid out
    browser.save_screenshot(str(artefacts(tmp_path) / "run-list-1400.png"))
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 1400
    # No column behind the table's own horizontal scrollbar either.
    results = "document.querySelector('#changelist .results')"
    overflow = browser.execute_script(f"return {results}.scrollWidth - {results}.clientWidth")
    assert overflow <= 2  # sub-pixel rounding of the columns' widths, seen under load
    headers = [th.text.strip().lower() for th in browser.find_elements(By.CSS_SELECTOR, "thead th")]
    for column in ("status", "source", "started", "duration", "items", "failed"):
        assert column in headers
