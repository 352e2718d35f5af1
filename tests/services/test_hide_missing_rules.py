"""Hide-missing only after a run that saw the whole feed in one pass: a resumed run and a
retry each saw part of it, so they hide nothing and say why."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from oscar.core.loading import get_model

from productsync.models import SyncRun
from productsync.services import sync_run_retry
from tests.conftest import product

Product = get_model("catalogue", "Product")


@pytest.fixture
def hide_everything(settings):
    """HIDE_MISSING on, with no guard: any product a run did not see would be hidden."""
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "HIDE_MISSING": True,
        "HIDE_MISSING_MAX_FRACTION": 1.0,
    }


def hidden_upcs() -> list[str]:
    return sorted(Product.objects.filter(is_public=False).values_list("upc", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_resumed_run_hides_nothing(tmp_path, hide_everything):
    path = tmp_path / "feed.json"
    items = [product(f"R{i:02d}") for i in range(40)]
    whole = json.dumps(items).encode()
    # The feed breaks after 34 items: 3 whole batches of 10 and 4 items of the fourth stand.
    cut = whole.index(b'{"upc": "R34"')
    path.write_bytes(whole[:cut] + b"\xff\xfe garbage")
    with pytest.raises(SystemExit):
        call_command(
            "sync_products", "--source", str(path), "--batch-size", "10", stdout=StringIO()
        )
    broken = SyncRun.objects.get()
    assert (broken.status, broken.created) == ("failed", 34)
    assert "hide-missing: nothing hidden because the run did not read the whole feed" in (
        broken.notes
    )

    path.write_bytes(whole)  # the feed is whole again; resume reads from item 34
    out = StringIO()
    call_command("sync_products", "--resume", str(broken.pk), "--hide-missing", stdout=out)
    resumed = SyncRun.objects.get(resumed_from=broken)
    assert (resumed.status, resumed.items, resumed.created, resumed.hidden) == (
        "succeeded",
        6,
        6,
        0,
    )
    assert hidden_upcs() == []
    note = "hide-missing: nothing hidden because a resumed run reads only the rest of the feed"
    assert note in resumed.notes
    assert f"Note: {note}" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_retry_of_failed_items_hides_nothing(write_feed, hide_everything):
    items = [product(f"T{i}") for i in range(10)] + [product("BAD", title="")]
    source = write_feed(items)
    with pytest.raises(SystemExit):
        call_command("sync_products", "--source", source, stdout=StringIO())
    original = SyncRun.objects.get()
    assert (original.created, original.failed, original.hidden) == (10, 1, 0)

    retry = sync_run_retry(original.pk)

    assert (retry.items, retry.failed, retry.hidden) == (1, 1, 0)
    assert hidden_upcs() == []
    assert "hide-missing: nothing hidden because a retry reads only the failed items" in (
        retry.notes
    )
    # A later whole run of the feed still hides what left it.
    write_feed(items[1:])
    with pytest.raises(SystemExit):
        call_command("sync_products", "--source", source, stdout=StringIO())
    assert hidden_upcs() == ["T0"]
