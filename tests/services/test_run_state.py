"""A run's options as one frozen RunSpec, and the run's state kept in fields (migration 0007)."""

import dataclasses

import pytest

from productsync.exceptions import ProductSyncError, SourceError
from productsync.models import SyncRun
from productsync.services import run_spec_build, run_spec_execute
from tests.conftest import product, productsync_migrate


def test_a_spec_is_built_once_with_the_settings_defaults_and_cannot_change(settings, tmp_path):
    settings.PRODUCTSYNC = {"SOURCE": str(tmp_path / "feed.json"), "BATCH_SIZE": 7}
    spec = run_spec_build(feed_options={"format": "json"})
    assert (spec.source, spec.batch_size, spec.workers, spec.feed.format) == (
        str(tmp_path / "feed.json"),
        7,
        "local",
        "json",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.dry_run = True
    with pytest.raises(ProductSyncError, match="batch size must be from 1"):
        run_spec_build(batch_size=10**9)
    with pytest.raises(ProductSyncError, match="a dry run is local"):
        run_spec_build(dry_run=True, workers="queue")
    with pytest.raises(ProductSyncError, match="bad feed options"):
        run_spec_build(feed_options={"colour": "red"})
    settings.PRODUCTSYNC = {}
    with pytest.raises(SourceError, match="no source given"):
        run_spec_build()


@pytest.mark.django_db
def test_the_unknown_keys_a_run_met_are_a_field_each_noted_once(write_feed):
    feed = [product("1", colour="red"), product("2", colour="blue", size=3), product("3")]
    run = run_spec_execute(run_spec_build(write_feed(feed), batch_size=1))
    run.refresh_from_db()
    assert run.unknown_keys == ["colour", "size"]
    assert run.notes == ["unknown keys ignored: colour", "unknown keys ignored: size"]


@pytest.mark.django_db
def test_an_unchanged_file_run_stores_the_catalogue_state_as_fields(write_feed):
    first = run_spec_execute(run_spec_build(write_feed([product("1"), product("2")])))
    first.refresh_from_db()
    assert (first.state_run, first.state_count) == (first.pk, 2)
    assert first.state_changed is not None


@pytest.mark.django_db(transaction=True)
def test_migration_0007_turns_the_catalogue_state_string_into_fields():
    old = productsync_migrate("0006_feed_digest")
    try:
        OldRun = old.get_model("productsync", "SyncRun")
        stamped = OldRun.objects.create(
            source="feed.json",
            batch_size=5,
            status="succeeded",
            catalogue_state="41 12 2026-11-28T19:54:00.123456+00:00",
        )
        empty = OldRun.objects.create(
            source="other.json", batch_size=5, status="succeeded", catalogue_state="41 0 "
        )
        plain = OldRun.objects.create(source="other.json", batch_size=5, status="failed")
    finally:
        productsync_migrate()  # through 0007 to the latest migration, which the model has
    runs = SyncRun.objects.in_bulk([stamped.pk, empty.pk, plain.pk])
    assert (runs[stamped.pk].state_run, runs[stamped.pk].state_count) == (41, 12)
    assert runs[stamped.pk].state_changed.isoformat() == "2026-11-28T19:54:00.123456+00:00"
    assert (runs[empty.pk].state_run, runs[empty.pk].state_count) == (41, 0)
    assert runs[empty.pk].state_changed is None
    assert runs[plain.pk].state_run is None and runs[plain.pk].unknown_keys == []
