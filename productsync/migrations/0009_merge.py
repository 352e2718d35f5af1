"""Joins the two migrations of the import tool (SyncItem, uploads) and of partial feeds and
drift (partial, repaired), made side by side on 0007."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("productsync", "0008_i15_import_tool"),
        ("productsync", "0008_i16_partial_drift"),
    ]
    operations = []
