"""Failed items as feed files: every failure once, in feed order, however many there are."""

import json

import pytest

from productsync.exports import failures_jsonl
from productsync.models import SyncFailure, SyncRun

pytestmark = pytest.mark.django_db


def test_failures_jsonl_reads_every_failure_in_order_across_chunks():
    run = SyncRun.objects.create(source="/x.json", batch_size=1, status="completed_with_failures")
    other = SyncRun.objects.create(source="/x.json", batch_size=1, status="completed_with_failures")
    # Inserted out of order, with two failures at the boundary position 999.
    positions = list(range(2500, 0, -1)) + [999]
    SyncFailure.objects.bulk_create(
        SyncFailure(run=run, position=p, message="m", raw_payload=json.dumps({"p": p}))
        for p in positions
    )
    SyncFailure.objects.create(run=other, position=5, message="m", raw_payload="{}")
    lines = list(failures_jsonl(run.pk))
    assert len(lines) == len(positions)
    assert all(line.endswith("\n") for line in lines)
    assert [json.loads(line)["p"] for line in lines] == sorted(positions)
