"""Payment methods keep the gateway's token, brand, last four digits and
expiry — never the card number (docs/deploy.md, "Card data"). Existing cards
are converted: a token of the same test behaviour, the brand by the leading
digits, the last four; then the number column is dropped."""

import uuid

from django.db import migrations, models
from django.db.models import Q

BEHAVIOUR = {
    "4242424242424242": "approved",
    "4000000000000002": "declined",
    "4000000000000119": "error",
    "4000000000000341": "once",
}


def brand_of(number):
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "Mastercard"
    if number[:2] in {"34", "37"}:
        return "Amex"
    return "Card"


def to_tokens(apps, schema_editor):
    Method = apps.get_model("customers", "PaymentMethod")
    cards = Method.objects.filter(kind="card").only("pk", "card_number")
    for method in cards.iterator(chunk_size=2000):
        number = method.card_number
        method.token = f"tok_{BEHAVIOUR.get(number, 'unknown')}_{uuid.uuid4().hex[:16]}"
        method.brand, method.last4, method.card_number = brand_of(number), number[-4:], ""
        method.save(update_fields=["token", "brand", "last4", "card_number"])


class Migration(migrations.Migration):
    dependencies = [("customers", "0007_email_invitation")]
    operations = [
        migrations.AddField(
            model_name="paymentmethod",
            name="token",
            field=models.CharField(blank=True, help_text="The gateway's card token", max_length=64),
        ),
        migrations.AddField(
            model_name="paymentmethod", name="brand", field=models.CharField(blank=True, max_length=20)
        ),
        migrations.AddField(
            model_name="paymentmethod", name="last4", field=models.CharField(blank=True, max_length=4)
        ),
        migrations.RemoveConstraint(model_name="paymentmethod", name="payment_method_card_complete"),
        migrations.RunPython(to_tokens, migrations.RunPython.noop),
        migrations.RemoveField(model_name="paymentmethod", name="card_number"),
        migrations.AddConstraint(
            model_name="paymentmethod",
            constraint=models.CheckConstraint(
                condition=Q(kind="invoice")
                | (
                    Q(kind="card")
                    & ~Q(token="")
                    & Q(expiry_month__gte=1, expiry_month__lte=12)
                    & Q(expiry_year__isnull=False)
                ),
                name="payment_method_card_complete",
            ),
        ),
    ]
