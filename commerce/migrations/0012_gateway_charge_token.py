"""The test gateway's ledger keeps the card's token, never its number
(docs/deploy.md, "Card data"): existing rows get a token of the same test
behaviour, and the number column goes."""

import uuid

from django.db import migrations, models

BEHAVIOUR = {
    "4242424242424242": "approved",
    "4000000000000002": "declined",
    "4000000000000119": "error",
    "4000000000000341": "once",
}


def to_tokens(apps, schema_editor):
    Charge = apps.get_model("commerce", "GatewayCharge")
    for row in Charge.objects.only("pk", "card_number").iterator(chunk_size=2000):
        behaviour = BEHAVIOUR.get(row.card_number, "unknown")
        row.payment_token = f"tok_{behaviour}_{uuid.uuid4().hex[:16]}"
        row.card_number = ""
        row.save(update_fields=["payment_token", "card_number"])


class Migration(migrations.Migration):
    dependencies = [("commerce", "0011_pending_purchases_index")]
    operations = [
        migrations.AddField(
            model_name="gatewaycharge",
            name="payment_token",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(to_tokens, migrations.RunPython.noop),
        migrations.RemoveField(model_name="gatewaycharge", name="card_number"),
    ]
