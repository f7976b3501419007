"""Invoices and credit notes (docs/documents.md): numbered per client and kind
without gaps, frozen when issued, shown as HTML and rendered to PDF from the
same template (WeasyPrint)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Document, DocumentCounter, DocumentKind, Purchase
from .money import split_vat

TEMPLATE = "documents/document.html"


def take_number(client_id: int, kind: str) -> int:
    """The next number of ``kind`` for the client. Call inside the transaction
    that writes the document: the counter row stays locked until it commits,
    and a rollback gives the number back."""
    DocumentCounter.objects.bulk_create(
        [DocumentCounter(client_id=client_id, kind=kind)], ignore_conflicts=True
    )
    counter = DocumentCounter.objects.select_for_update().get(client_id=client_id, kind=kind)
    counter.last += 1
    counter.save(update_fields=["last"])
    return counter.last


def purchase_lines(purchase: Purchase) -> list[dict[str, str]]:
    return [
        {
            "running_no": str(line.running_no),
            "description": line.product.name,
            "quantity": str(line.quantity),
            "unit_price": str(line.unit_price),
            "amount": str(line.amount),
        }
        for line in purchase.items.select_related("product").order_by("running_no")
    ]


def invoice_for(purchase: Purchase, *, at: datetime | None = None) -> Document:
    """The purchase's invoice, issued now if it has none yet (a paid purchase:
    when its receipt is sent, or when someone first asks for it)."""
    existing = Document.objects.filter(purchase=purchase, kind=DocumentKind.INVOICE).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        number = take_number(purchase.client_id, DocumentKind.INVOICE)  # serialises
        existing = Document.objects.filter(purchase=purchase, kind=DocumentKind.INVOICE).first()
        if existing is not None:
            transaction.set_rollback(True)  # someone issued it meanwhile: no number used
            return existing
        rate = purchase.client.vat_rate
        total, net, vat = split_vat(purchase.total, purchase.currency, rate)
        return Document.objects.create(
            client_id=purchase.client_id,
            purchase=purchase,
            kind=DocumentKind.INVOICE,
            number=number,
            issued_at=at or purchase.paid_at or timezone.now(),
            currency=purchase.currency,
            net=net,
            vat=vat,
            vat_rate=rate,
            total=total,
            lines=purchase_lines(purchase),
            gateway_reference=purchase.gateway_reference,
        )


def issue_credit_note(
    purchase: Purchase,
    *,
    amount: Decimal,
    lines: list[dict[str, str]],
    reason: str,
    note: str,
    refund_key: str,
    gateway_reference: str,
    at: datetime,
) -> Document:
    """A credit note for a refund of ``amount`` (VAT included); inside the
    refund's transaction."""
    rate = purchase.client.vat_rate
    total, net, vat = split_vat(amount, purchase.currency, rate)
    return Document.objects.create(
        client_id=purchase.client_id,
        purchase=purchase,
        kind=DocumentKind.CREDIT_NOTE,
        number=take_number(purchase.client_id, DocumentKind.CREDIT_NOTE),
        issued_at=at,
        currency=purchase.currency,
        net=net,
        vat=vat,
        vat_rate=rate,
        total=total,
        lines=lines,
        reason=reason,
        note=note,
        refund_key=refund_key,
        gateway_reference=gateway_reference,
    )


def context(document: Document) -> dict[str, Any]:
    purchase = document.purchase
    invoice = None
    if document.kind == DocumentKind.CREDIT_NOTE:
        invoice = Document.objects.filter(purchase=purchase, kind=DocumentKind.INVOICE).first()
    return {
        "doc": document,
        "client": document.client,
        "customer": purchase.customer,
        "purchase": purchase,
        "invoice": invoice,
    }


def render_html(document: Document, *, inline_css: str = "") -> str:
    return render_to_string(TEMPLATE, {**context(document), "inline_css": inline_css})


def render_pdf(document: Document) -> bytes:
    """The same page as the HTML view, as PDF (its stylesheet inlined)."""
    from weasyprint import HTML  # loads pango: only when a PDF is made

    css = Path(str(finders.find("css/document.css"))).read_text()
    pdf: bytes = HTML(string=render_html(document, inline_css=css)).write_pdf()
    return pdf
