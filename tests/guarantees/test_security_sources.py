"""Credentials a source URL carries (user info, a token in its query) are used to fetch it
and never recorded or shown: the run's source, its error and the admin's pages show them
as `***`."""

import json

import pytest

from productsync.exceptions import SourceError
from productsync.models import SyncRun
from productsync.services import sync_run_execute
from productsync.services.source import source_display
from tests.admin.test_admin import VIEW, staff, url
from tests.conftest import product

pytestmark = pytest.mark.django_db

SECRET = "S3cretTok"


def test_source_display_hides_user_info_and_secret_parameters():
    given = (
        f"https://user:{SECRET}@Feeds.localhost/p?token={SECRET}&page=2&api_key=k&X-Amz-Signature=s"
    )

    shown = source_display(given)

    assert shown == "https://Feeds.localhost/p?token=***&page=2&api_key=***&X-Amz-Signature=***"
    assert source_display(shown) == shown
    assert source_display("/srv/feeds/p.json") == "/srv/feeds/p.json"


def test_a_token_in_a_source_url_is_used_but_never_recorded_or_shown(
    http_server, client, django_user_model
):
    httpd = http_server()
    query = f"?token={SECRET}&page=2"
    httpd.files["/feed.json" + query] = (json.dumps([product("A")]).encode(), "application/json")

    run = sync_run_execute(httpd.url + "/feed.json" + query)

    assert (run.status, run.created) == ("succeeded", 1)
    assert [path for path, _, _ in httpd.seen] == ["/feed.json" + query]  # fetched with it
    assert run.source == httpd.url + "/feed.json?token=***&page=2"
    client.force_login(staff(django_user_model, "viewer", *VIEW))
    for page in (client.get(url("changelist")), client.get(url("change", run.pk))):
        assert page.status_code == 200
        assert SECRET not in page.content.decode()


def test_the_error_of_a_source_with_a_token_does_not_show_it(http_server):
    httpd = http_server()

    with pytest.raises(SourceError):
        sync_run_execute(f"{httpd.url}/missing.json?access_token={SECRET}")

    run = SyncRun.objects.get()
    assert run.source.endswith("/missing.json?access_token=***")
    assert run.error.startswith(run.source + ": ")  # the reason, after the source as shown
    assert SECRET not in run.error
