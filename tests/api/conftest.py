import base64
import json

import pytest

from commerce.models import ApiCredential

BASE = "/api/subscription/"


class Api:
    """A Django test client speaking to the API with one credential."""

    def __init__(self, client, credential, secret):
        self.client, self.credential = client, credential
        token = base64.b64encode(f"{credential.key_id}:{secret}".encode()).decode()
        self.auth = f"Basic {token}"

    def get(self, endpoint, **params):
        return self.client.get(BASE + endpoint, params, HTTP_AUTHORIZATION=self.auth)

    def post(self, endpoint, body, raw=None, key=None):
        headers = {"Idempotency-Key": key} if key else {}
        return self.client.post(
            BASE + endpoint,
            raw if raw is not None else json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=self.auth,
            headers=headers,
        )


@pytest.fixture
def api_for(client):
    def make(vendor, label="ERP"):
        credential, secret = ApiCredential.issue(client=vendor, label=label)
        return Api(client, credential, secret)

    return make


@pytest.fixture
def api(api_for, sm2):
    return api_for(sm2)
