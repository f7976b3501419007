"""The Subscription API (docs/api.md): HTTP Basic with a client's API credential,
PascalCase JSON, ``ResultMessage`` on every answer. Every endpoint calls the
lifecycle services, like the back office."""
