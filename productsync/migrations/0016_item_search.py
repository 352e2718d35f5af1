"""A preview's items keep their title and codes (SKUs, children's UPCs), so it can be searched."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('productsync', '0015_run_image_failures'),
    ]

    operations = [
        migrations.AddField(
            model_name='syncitem',
            name='codes',
            field=models.CharField(blank=True, help_text="Its SKUs and its children's UPCs and SKUs (the first ones): what the preview's search finds it by, with its UPC and title.", max_length=1000, verbose_name='codes'),
        ),
        migrations.AddField(
            model_name='syncitem',
            name='title',
            field=models.CharField(blank=True, max_length=255, verbose_name='title'),
        ),
    ]
