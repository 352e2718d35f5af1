"""A synced product's key (what its items name in `upc`) is kept in its sync state, so that
Product.upc can be the platform's barcode: each sync state takes its product's UPC, which
was the key until now."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def keys_fill(apps, schema_editor) -> None:
    SyncedProduct = apps.get_model("productsync", "SyncedProduct")
    Product = apps.get_model("catalogue", "Product")
    upc = Product.objects.filter(pk=OuterRef("product_id")).values("upc")[:1]
    SyncedProduct.objects.using(schema_editor.connection.alias).update(sync_key=Subquery(upc))


class Migration(migrations.Migration):
    dependencies = [("productsync", "0020_change_capture")]

    operations = [
        migrations.AddField(
            model_name="syncedproduct",
            name="sync_key",
            field=models.CharField(max_length=64, null=True, unique=True, verbose_name="sync key"),
        ),
        migrations.RunPython(keys_fill, migrations.RunPython.noop),
    ]
