import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """The rate limit counts calls per credential id in the cache; on SQLite
    ids repeat from test to test, so each test starts with no calls counted."""
    cache.clear()
    yield
    cache.clear()
