"""The sync state of each product the sync wrote (its writer's memory between runs)."""

from django.db import models


class SyncedProduct(models.Model):
    """What the last sync wrote to a product, so an unchanged item costs no writes."""

    product = models.OneToOneField(
        "catalogue.Product",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="productsync_state",
    )
    # What the product's items name in `upc`: its key, kept apart from Product.upc, which
    # is the platform's barcode where the feed gives one (writer.catalogue.product_upc).
    # Null, not "", where unknown (a state from before keys whose product lost its UPC):
    # unique, as Oscar's own upc.
    sync_key = models.CharField("sync key", max_length=64, unique=True, null=True)  # noqa: DJ001
    source = models.CharField("source", max_length=2000)
    fingerprint = models.CharField("fingerprint", max_length=32)
    raw_fingerprint = models.CharField(
        "raw fingerprint",
        max_length=32,
        blank=True,
        help_text="Of the item as read: the same item is skipped before it is validated.",
    )
    # Counted by the change-capture triggers (writer/capture.py): the changes someone other
    # than the sync made since it last wrote the product; not 0, the product has drifted.
    edits = models.BigIntegerField("edits", default=0, db_default=0)
    # The stock levels the feed last gave the product's stock records (JSON): a level is
    # written when the feed's value for it changes, never to undo an order.
    stock_fed = models.TextField("stock fed", blank=True, default="")
    synced_at = models.DateTimeField("synced at")
    last_run_id = models.BigIntegerField("last run", null=True, db_index=True)
    last_position = models.PositiveIntegerField("last position", null=True)

    class Meta:
        verbose_name = "synced product"

    def __str__(self) -> str:
        return f"Sync state of product {self.product_id}"
