"""The catalogue state and the unknown keys a run noted become fields: they were prose
(a "run count changed" string, notes) parsed back."""

from django.db import migrations, models
from django.utils.dateparse import parse_datetime


def state_split(apps, schema_editor):
    SyncRun = apps.get_model("productsync", "SyncRun")
    for run in SyncRun.objects.exclude(catalogue_state="").only("pk", "catalogue_state"):
        reading_run, count, changed = (run.catalogue_state.split(" ", 2) + ["", ""])[:3]
        SyncRun.objects.filter(pk=run.pk).update(
            state_run=int(reading_run),
            state_count=int(count),
            state_changed=parse_datetime(changed) if changed else None,
        )


def state_join(apps, schema_editor):
    SyncRun = apps.get_model("productsync", "SyncRun")
    for run in SyncRun.objects.exclude(state_run=None):
        changed = run.state_changed.isoformat() if run.state_changed else ""
        SyncRun.objects.filter(pk=run.pk).update(
            catalogue_state=f"{run.state_run} {run.state_count} {changed}"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("productsync", "0006_feed_digest"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="state_run",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="The run that last read the feed of the source's synced products.",
                null=True,
                verbose_name="state: reading run",
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="state_count",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="The source's synced products.",
                null=True,
                verbose_name="state: products",
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="state_changed",
            field=models.DateTimeField(
                blank=True,
                help_text="When one of the source's synced products last changed.",
                null=True,
                verbose_name="state: last change",
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="unknown_keys",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Item keys the feed format does not know that the run met (and noted).",
                verbose_name="unknown keys",
            ),
        ),
        migrations.RunPython(state_split, state_join),
        migrations.RemoveField(model_name="syncrun", name="catalogue_state"),
    ]
