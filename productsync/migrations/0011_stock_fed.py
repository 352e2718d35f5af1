from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("productsync", "0010_state_halves"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="partner",
            field=models.CharField(
                blank=True,
                default="",
                help_text="A stock run's partner: the only partner whose stock records it wrote.",
                max_length=128,
                verbose_name="partner",
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="stock_authoritative",
            field=models.BooleanField(
                default=False,
                help_text="The feed's stock levels overwrote the shop's whenever an item was "
                "written.",
                verbose_name="stock authoritative",
            ),
        ),
        migrations.AddField(
            model_name="syncedproduct",
            name="stock_fed",
            field=models.TextField(
                blank=True,
                default="",
                help_text="The stock levels the feed last gave the product's stock records "
                "(JSON): a level is written when the feed's value changes, never to undo an "
                "order.",
                verbose_name="stock fed",
            ),
        ),
    ]
