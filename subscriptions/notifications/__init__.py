"""Notifications, in one place (docs/notifications.md): their types
(``types``), payloads (``payloads``), the outbox and the customer e-mails
each implies (``outbox``), webhook delivery (``webhooks``, ``tasks``) and the
staff pages for them (``views``)."""
