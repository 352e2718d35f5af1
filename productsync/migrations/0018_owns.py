"""The fields a feed and a run own: written, and no other."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('productsync', '0017_run_options'),
    ]

    operations = [
        migrations.AddField(
            model_name='feed',
            name='owns',
            field=models.CharField(blank=True, help_text='The fields the feed owns, comma-separated (price, num_in_stock): its runs write those and nothing else. Empty: every field its items carry.', max_length=300, verbose_name='owns'),
        ),
        migrations.AddField(
            model_name='syncrun',
            name='owns',
            field=models.CharField(blank=True, default='', max_length=300, verbose_name='owns'),
        ),
    ]
