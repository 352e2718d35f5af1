"""Images not fetched by a run, counted by kind, so the run page groups them."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('productsync', '0014_status_completed_with_failures'),
    ]

    operations = [
        migrations.AddField(
            model_name='syncrun',
            name='image_failures',
            field=models.JSONField(blank=True, default=dict, help_text='Images not fetched: counts by kind of failure, the first few named.', verbose_name='images not fetched'),
        ),
    ]
