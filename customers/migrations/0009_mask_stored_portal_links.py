"""Stored copies of e-mails no longer keep the customer's portal link (it
opens their account): links already stored are replaced by the mask that
new e-mails carry (docs/portal.md)."""

import re

from django.db import migrations

LINK = re.compile(r"https?://[^\s\"'<>]+/portal/enter/[^\s\"'<>/]+/?")
MASK = "[personal portal link, sent to the customer only]"


def mask(apps, schema_editor):
    Email = apps.get_model("customers", "CustomerEmail")
    stored = Email.objects.filter(body_text__contains="/portal/enter/")
    for email in stored.only("pk", "body_text", "body_html").iterator(chunk_size=2000):
        email.body_text = LINK.sub(MASK, email.body_text)
        email.body_html = LINK.sub(MASK, email.body_html)
        email.save(update_fields=["body_text", "body_html"])


class Migration(migrations.Migration):
    dependencies = [("customers", "0008_card_tokens")]
    operations = [migrations.RunPython(mask, migrations.RunPython.noop)]
