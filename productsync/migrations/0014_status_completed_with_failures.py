"""A run whose items partly failed is "completed with failures", no longer "partial": that
word names a kind of feed (a stock file). Stored statuses are renamed both ways."""

from django.db import migrations, models

OLD, NEW = "partial", "completed_with_failures"


def _rename(old: str, new: str):
    def rename(apps, schema_editor) -> None:
        apps.get_model("productsync", "SyncRun").objects.filter(status=old).update(status=new)

    return rename


class Migration(migrations.Migration):
    dependencies = [("productsync", "0013_stock_fed_run_partner")]

    operations = [
        migrations.AlterField(
            model_name="syncrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "running"),
                    ("succeeded", "succeeded"),
                    ("completed_with_failures", "completed with failures"),
                    ("failed", "failed"),
                    ("aborted", "aborted"),
                    ("skipped", "skipped"),
                    ("queued", "queued"),
                ],
                db_index=True,
                default="running",
                max_length=32,
                verbose_name="status",
            ),
        ),
        migrations.AlterField(
            model_name="syncbatch",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "pending"),
                    ("running", "running"),
                    ("succeeded", "succeeded"),
                    ("partial", "with failures"),
                    ("failed", "failed"),
                ],
                max_length=16,
                verbose_name="status",
            ),
        ),
        migrations.RunPython(_rename(OLD, NEW), _rename(NEW, OLD)),
    ]
