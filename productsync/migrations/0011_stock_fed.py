from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("productsync", "0010_state_halves"),
    ]

    operations = [
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
