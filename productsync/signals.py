"""Signals a project can connect to for its own side effects of a sync."""

from django.dispatch import Signal

# Sent after a batch's transaction committed and the batch was recorded (not on dry runs):
# run (SyncRun), batch (SyncBatch), product_ids (the products written, children included).
batch_committed = Signal()
