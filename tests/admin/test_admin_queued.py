"""Each task queued from the admin leads its admin to its own run, whoever else queued one."""

import pytest
from django.test import Client
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from productsync.models import SyncRun
from tests.admin.test_admin import VIEW, staff
from tests.admin.test_admin_import import jsonl, queue_unseen, upload, url  # noqa: F401
from tests.conftest import product

pytestmark = pytest.mark.django_db


def test_two_admins_previewing_at_once_each_reach_their_own_preview(
    client,
    django_user_model,
    queue_unseen,  # noqa: F811
):
    alice, bob = client, Client()
    alice.force_login(staff(django_user_model, "alice", *VIEW, "run_sync"))
    bob.force_login(staff(django_user_model, "bob", *VIEW, "run_sync"))
    waiting_alice = upload(alice, jsonl([product("ALICE")]), name="alice.jsonl")["Location"]
    waiting_bob = upload(bob, jsonl([product("BOB")]), name="bob.jsonl")["Location"]

    # The cluster happens to take Bob's task first.
    for queued in OrmQ.objects.order_by("-pk"):
        task = queued.task
        queued.delete()
        import_string(task["func"])(*task["args"], **task["kwargs"])

    for waiting, name in ((waiting_alice, "alice.jsonl"), (waiting_bob, "bob.jsonl")):
        run_page = alice.get(waiting)["Location"]
        run = SyncRun.objects.get(upload_name=name)
        assert run_page == url("change", run.pk)
