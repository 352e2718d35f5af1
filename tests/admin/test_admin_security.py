"""The admin against a hostile feed and curious staff: the failures CSV opens as text in a
spreadsheet, starting and retrying need both permissions, bad ids are 404, and huge feed
values are cut short on pages while the downloads keep them whole."""

import csv
import io
import json

import pytest
from django_q.models import OrmQ

from productsync.exports import csv_safe
from productsync.services import sync_run_execute
from tests.admin.test_admin import VIEW, staff, url
from tests.conftest import product

pytestmark = pytest.mark.django_db

FORMULAS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", '=HYPERLINK("x")']


def test_csv_safe_neutralises_formula_leading_cells_only():
    assert [csv_safe(value) for value in FORMULAS] == ["'" + value for value in FORMULAS]
    for harmless in ["", "plain", "A=1", "-1", "+44", "-1.50", "'quoted", "1e5", "-"]:
        assert csv_safe(harmless) == ("'-" if harmless == "-" else harmless), harmless


@pytest.fixture
def formula_run(write_feed):
    """Failed items (no product class) titled with formulas, one with a negative price."""
    items = [product(f"F{n}", title=title) for n, title in enumerate(FORMULAS)]
    items.append(product("=F99", title="Negative"))
    items[-1]["stockrecords"][0]["price"] = "-1"
    for item in items:
        del item["product_class"]
    return sync_run_execute(write_feed(items))


def test_the_failures_csv_opens_formulas_as_text(client, django_user_model, formula_run):
    client.force_login(staff(django_user_model, "viewer", *VIEW))

    response = client.get(url("failures_csv", formula_run.pk))

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["title"] for row in rows] == ["'" + value for value in FORMULAS] + ["Negative"]
    assert rows[-1]["upc"] == "'=F99"
    assert rows[-1]["price"] == "-1"  # a number, not a formula: kept as it is
    # The JSON Lines download is the feed as it came, for resubmitting.
    lines = b"".join(client.get(url("failures_jsonl", formula_run.pk)).streaming_content)
    assert [json.loads(line)["title"] for line in lines.splitlines()[:2]] == FORMULAS[:2]


def test_start_and_retry_need_the_view_permission_too(client, django_user_model, formula_run):
    client.force_login(staff(django_user_model, "runs-only", "run_sync"))

    assert client.post(url("start")).status_code == 403
    assert client.post(url("retry", formula_run.pk)).status_code == 403
    assert client.post(url("retry", 10**6)).status_code == 403
    assert OrmQ.objects.count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "queued/abc/",
        "queued/abc/status.json?run=abc",
        "queued/abc/?run=" + "A" * 32,
        "queued/abc/?run=" + "0" * 33,
        "99999999999999999999999/progress.json",
        "99999999999999999999999/failures.csv",
    ],
)
def test_bad_ids_are_404(client, django_user_model, path):
    client.force_login(staff(django_user_model, "runner", *VIEW, "run_sync"))

    assert client.get(f"/admin/productsync/syncrun/{path}").status_code == 404


def test_a_retry_of_a_run_that_does_not_exist_is_404(client, django_user_model):
    client.force_login(staff(django_user_model, "runner", *VIEW, "run_sync"))

    assert client.post(url("retry", 99999999999999999999999)).status_code == 404


def test_huge_values_are_cut_short_on_the_run_page_and_whole_in_downloads(
    client, django_user_model, write_feed
):
    title = "T" * 4_000_000
    items = [product(f"BIG-{n}", title=title + str(n)) for n in range(10)]
    run = sync_run_execute(write_feed(items))
    assert run.failed == 10  # titles are at most 255 characters
    client.force_login(staff(django_user_model, "viewer", *VIEW))

    page = client.get(url("change", run.pk)).content.decode()

    assert len(page) < 200_000
    assert page.count("the whole payload is in the downloads") == 10
    lines = b"".join(client.get(url("failures_jsonl", run.pk)).streaming_content).splitlines()
    assert [json.loads(line)["title"] for line in lines] == [title + str(n) for n in range(10)]
    text = b"".join(client.get(url("failures_csv", run.pk)).streaming_content).decode()
    assert all(f",{title}{n}," in text for n in range(10))
