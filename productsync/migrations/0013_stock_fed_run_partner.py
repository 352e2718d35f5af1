from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("productsync", "0012_run_queued_as_mapping_digest"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="partner",
            field=models.CharField(
                blank=True,
                default="",
                max_length=128,
                verbose_name="partner",
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="stock_authoritative",
            field=models.BooleanField(
                default=False,
                verbose_name="stock authoritative",
            ),
        ),
        migrations.AddField(
            model_name="syncedproduct",
            name="stock_fed",
            field=models.TextField(
                blank=True,
                default="",
                verbose_name="stock fed",
            ),
        ),
    ]
