"""Signals a project can connect to for its own side effects of a sync."""

from django.dispatch import Signal

# Sent after a batch's transaction committed and the batch was recorded (not on dry runs):
# run (SyncRun), batch (SyncBatch), product_ids (the products written, children included).
batch_committed = Signal()

# Sent once a run has ended and its end is recorded (not for a run skipped because another
# held the lease), by the process that ended it: run (SyncRun). Alerts of feeds follow it;
# a project that alerts its own way connects here.
run_finished = Signal()
