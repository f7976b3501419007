"""The Subscription API (docs/api.md without item changes, 6.4): every
endpoint's success, its 4xx answers, another client's subscription as 404,
an illegal transition as 409 with nothing changed."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.gateway import CARD_DECLINED
from commerce.models import ApiCredential, Purchase
from customers.models import CustomerEmail
from subscriptions import services
from subscriptions.models import HistoryEntry, Subscription
from tests.conftest import STAFF, T0, assets_from_elsewhere, fresh, item_statuses, subscribe
from tests.factories import ClientFactory, ProductFactory

BASE = "/api/subscription/"


@pytest.fixture
def sub(sm2, monthly):
    return subscribe(sm2, monthly, email="ann@example.com")


def test_no_or_wrong_credentials_are_401(client, api, sub):
    anonymous = client.get(BASE + "getsubscription", {"subscriptionId": sub.display_id})
    assert anonymous.status_code == 401
    assert anonymous.json()["ResultMessage"]
    assert anonymous["WWW-Authenticate"].startswith("Basic")
    api.auth = "Basic " + base64.b64encode(f"{api.credential.key_id}:nope".encode()).decode()
    assert api.get("getsubscription", subscriptionId=sub.display_id).status_code == 401


def test_a_revoked_credential_is_refused(api, sub):
    assert api.get("getsubscription", subscriptionId=sub.display_id).status_code == 200
    ApiCredential.objects.filter(pk=api.credential.pk).update(revoked_at=timezone.now())
    assert api.get("getsubscription", subscriptionId=sub.display_id).status_code == 401


def test_only_a_hash_of_the_secret_is_stored(sm2):
    credential, secret = ApiCredential.issue(client=sm2, label="x")
    assert secret not in credential.secret_sha256 and len(credential.secret_sha256) == 64
    assert credential.matches(secret) and not credential.matches(secret + "x")


def test_getsubscription_returns_the_subscription_object(api, sub):
    for value in (sub.display_id, str(sub.pk), sub.display_id.lower()):
        answer = api.get("getsubscription", subscriptionId=value)
        assert answer.status_code == 200, value
    body = answer.json()
    assert body["ResultMessage"] == "OK"
    obj = body["Subscription"]
    assert (obj["Id"], obj["SubscriptionStatus"], obj["RenewalType"]) == (
        sub.pk,  # a JSON integer, as in the original platform
        "Active",
        "Automatic",
    )
    assert obj["NextBillingDate"] == "2026-02-28T12:00:00Z"
    assert obj["NextBillingDateReminder"] == "2026-02-21T12:00:00Z"
    assert (obj["IntervalMonthCount"], obj["LastIntervalNo"], obj["GracePeriodDays"]) == (1, 1, 7)
    item = obj["Items"][0]
    assert (item["RunningNo"], item["Status"], item["ProductName"]) == (1, "Active", "Pro monthly")
    assert item["NextBillingCustomerGrossPrice"] == "10.00"
    signup = Purchase.objects.get(subscription=sub)
    assert item["SubscriptionPurchaseItems"] == [
        {"PurchaseId": signup.pk, "PurchaseItemRunningNo": 1, "SubscriptionIntervalNo": 1}
    ]


def test_prices_split_by_the_clients_vat_rate(api, sub, sm2):
    sm2.vat_rate = 19
    sm2.save()
    item = api.get("getsubscription", subscriptionId=sub.display_id).json()["Subscription"]
    prices = [item["Items"][0][f"NextBillingCustomer{k}Price"] for k in ("Gross", "Net", "Vat")]
    assert prices == ["10.00", "8.40", "1.60"]  # 10 / 1.19 = 8.4033… -> 8.40


def test_another_clients_subscription_is_404_like_an_unknown_one(api_for, api, sub):
    other = ClientFactory()
    theirs = subscribe(other, ProductFactory(client=other), email="o@example.com")
    foreign = api.get("getsubscription", subscriptionId=theirs.display_id)
    unknown = api.get("getsubscription", subscriptionId="S999999")
    assert foreign.status_code == unknown.status_code == 404
    assert "was not found" in foreign.json()["ResultMessage"]
    changed = api.post(
        "updatesubscriptionrenewaltype", {"SubscriptionId": theirs.pk, "RenewalType": "Manual"}
    )
    assert changed.status_code == 404 and fresh(theirs).renewal_type == "Automatic"


def test_bad_input_is_400_with_the_fields(api, sub):
    bad_id = api.get("getsubscription", subscriptionId="X12")
    assert bad_id.status_code == 400 and "SubscriptionId" in bad_id.json()["Errors"]
    missing = api.post("updatesubscriptionrenewaltype", {"RenewalType": "Sometimes"})
    assert missing.status_code == 400
    assert set(missing.json()["Errors"]) == {"SubscriptionId", "RenewalType"}
    broken = api.post("updatesubscriptionrenewaltype", None, raw="{not json")
    assert broken.status_code == 400 and broken.json()["ResultMessage"]
    wrong_method = api.get("updatesubscriptionrenewaltype")
    assert wrong_method.status_code == 405 and wrong_method.json()["ResultMessage"]
    assert api.get("nosuchendpoint").status_code == 404


def test_switching_renewal_type_writes_history_as_the_api_credential(api, sub):
    answer = api.post(
        "updatesubscriptionrenewaltype", {"SubscriptionId": sub.display_id, "RenewalType": "Manual"}
    )
    assert answer.status_code == 200
    assert answer.json()["Subscription"]["RenewalType"] == "Manual"
    entry = HistoryEntry.objects.filter(subscription=sub).order_by("-id").first()
    assert (entry.event_code, entry.actor_kind, entry.actor_label) == (
        "renTypeUpd",
        "api",
        "API ERP",
    )


def test_renewal_type_in_sm1_is_409_and_changes_nothing(api_for, sm1):
    api = api_for(sm1)
    sub = subscribe(sm1, ProductFactory(client=sm1), email="c@example.com")
    history = HistoryEntry.objects.filter(subscription=sub).count()
    answer = api.post(
        "updatesubscriptionrenewaltype", {"SubscriptionId": sub.display_id, "RenewalType": "Manual"}
    )
    assert answer.status_code == 409 and answer.json()["ResultMessage"]
    assert fresh(sub).renewal_type is None
    assert HistoryEntry.objects.filter(subscription=sub).count() == history


def test_deactivate_retire_and_reinstate_items(api, sm2, monthly):
    sub = subscribe(sm2, monthly, ProductFactory(client=sm2), email="two@example.com")
    one = api.post("deactivatesubscriptionitems", {"SubscriptionId": sub.pk, "Items": [1]})
    assert one.status_code == 200 and item_statuses(sub) == ["Deactivated", "Active"]
    assert fresh(sub).status == "Active"
    back = api.post("reinstatesubscriptionitems", {"SubscriptionId": sub.pk, "Items": [1]})
    assert back.status_code == 200 and item_statuses(sub) == ["Active", "Active"]
    retire = {"SubscriptionId": sub.pk, "Items": [2], "AllowReinstate": False}
    assert api.post("deactivatesubscriptionitems", retire).status_code == 200
    assert item_statuses(sub) == ["Active", "Finished"]
    again = api.post("reinstatesubscriptionitems", {"SubscriptionId": sub.pk, "Items": [2]})
    assert again.status_code == 409 and item_statuses(sub) == ["Active", "Finished"]
    no_item = api.post("deactivatesubscriptionitems", {"SubscriptionId": sub.pk, "Items": [7]})
    assert no_item.status_code == 404


def test_generate_mail_false_sends_no_email(api, sub):
    emails = CustomerEmail.objects.filter(subscription=sub).count()
    body = {"SubscriptionId": sub.pk, "Items": [1], "GenerateMail": False}
    assert api.post("deactivatesubscriptionitems", body).status_code == 200
    assert CustomerEmail.objects.filter(subscription=sub).count() == emails
    body["GenerateMail"] = True
    assert api.post("reinstatesubscriptionitems", body).status_code == 200
    assert CustomerEmail.objects.filter(subscription=sub).count() == emails + 1


def test_remove_item_needs_two_items(api, sm2, monthly, sub):
    only = api.post("removesubscriptionitem", {"SubscriptionId": sub.pk, "RunningNumber": 1})
    assert only.status_code == 409 and item_statuses(sub) == ["Active"]
    two = subscribe(sm2, monthly, ProductFactory(client=sm2), email="t@example.com")
    ok = api.post("removesubscriptionitem", {"SubscriptionId": two.pk, "RunningNumber": 2})
    assert ok.status_code == 200 and item_statuses(two) == ["Active", "Removed"]


def test_update_next_billing_date(api, sub):
    past = api.post(
        "updatenextbillingdate",
        {"SubscriptionId": sub.pk, "NextBillingDate": "2020-01-01T00:00:00Z"},
    )
    assert past.status_code == 400 and "NextBillingDate" in past.json()["Errors"]
    naive = api.post(
        "updatenextbillingdate", {"SubscriptionId": sub.pk, "NextBillingDate": "2026-06-01T00:00"}
    )
    garbage = api.post("updatenextbillingdate", {"SubscriptionId": sub.pk, "NextBillingDate": "x"})
    assert naive.status_code == garbage.status_code == 400
    assert fresh(sub).next_billing_date == T0 + timedelta(days=28)
    ok = api.post(
        "updatenextbillingdate",
        {"SubscriptionId": sub.pk, "NextBillingDate": "2026-06-01T00:00:00+02:00"},
    )
    assert ok.status_code == 200
    assert ok.json()["Subscription"]["NextBillingDate"] == "2026-05-31T22:00:00Z"


def test_renewsubscription_charges_now(api, sub):
    answer = api.post("renewsubscription", {"SubscriptionId": sub.display_id})
    body = answer.json()
    assert (answer.status_code, body["TransactionStatus"], body["ResultMessage"]) == (
        200,
        "Success",
        "OK",
    )
    assert body["NextBillingDate"] == "2026-03-31T12:00:00Z"  # remaining time kept
    assert fresh(sub).last_interval_no == 2


def test_renewing_a_deactivated_subscription_is_409(api, sub):
    services.deactivate_items(subscription=sub, running_nos=[1], actor=STAFF)
    answer = api.post("renewsubscription", {"SubscriptionId": sub.pk})
    assert answer.status_code == 409
    assert not Purchase.objects.filter(subscription=sub, category="renewal").exists()


def purchase_body(product, **overrides):
    body = {
        "Customer": {"Email": "b2b@example.com", "FirstName": "Bea", "ReferenceId": "ERP-1"},
        "Items": [{"ProductId": product.pk, "Quantity": 2}],
        "PaymentMethod": {
            "Type": "card",
            "CardNumber": "4242424242424242",
            "ExpiryMonth": 12,
            "ExpiryYear": 2099,
        },
        "ConfirmAutoRenewal": False,
    }
    body.update(overrides)
    return body


def test_createpurchase_signs_up_like_the_checkout(api, monthly):
    answer = api.post("createpurchase", purchase_body(monthly))
    body = answer.json()
    assert (answer.status_code, body["TransactionStatus"]) == (200, "Success")
    sub = Subscription.objects.get(pk=body["SubscriptionIds"][0])
    assert (sub.status, sub.renewal_type, sub.customer.reference_id) == (
        "Active",
        "Manual",
        "ERP-1",
    )
    assert Purchase.objects.get(pk=body["PurchaseId"]).total == 20
    by_ref = api.get("getsubscriptionsforcustomer", customerReferenceId="ERP-1").json()
    by_mail = api.get("getsubscriptionsforcustomer", customerEmail="B2B@example.com").json()
    by_id = api.get("getsubscriptionsforcustomer", customerId=str(body["CustomerId"])).json()
    assert [s["Id"] for s in by_ref["Subscriptions"]] == body["SubscriptionIds"]
    assert by_mail["Subscriptions"] == by_ref["Subscriptions"] == by_id["Subscriptions"]


def test_createpurchase_refusals(api, monthly, sm2):
    declined = api.post(
        "createpurchase",
        purchase_body(
            monthly,
            PaymentMethod={
                "Type": "card",
                "CardNumber": CARD_DECLINED,
                "ExpiryMonth": 12,
                "ExpiryYear": 2099,
            },
        ),
    ).json()
    assert declined["TransactionStatus"] == "Rejected" and declined["SubscriptionIds"] == []
    assert not Subscription.objects.filter(client=sm2).exists()
    other = ProductFactory(client=ClientFactory())
    foreign = api.post("createpurchase", purchase_body(other))
    assert foreign.status_code == 404 and "Items" in foreign.json()["Errors"]
    no_card = api.post("createpurchase", purchase_body(monthly, PaymentMethod={"Type": "card"}))
    assert no_card.status_code == 400
    assert "PaymentMethod.CardNumber" in no_card.json()["Errors"]
    no_email = api.post("createpurchase", purchase_body(monthly, Customer={"Email": "nope"}))
    assert no_email.status_code == 400 and "Customer.Email" in no_email.json()["Errors"]


def test_getsubscriptionsforcustomer_needs_one_key_and_the_first_counts(api, sub):
    none = api.get("getsubscriptionsforcustomer")
    assert none.status_code == 400 and "Give one of" in none.json()["ResultMessage"]
    both = api.get(
        "getsubscriptionsforcustomer", customerId=str(sub.customer_id), customerEmail="a@b.c"
    )
    assert both.status_code == 200  # customerId comes first in the documented order
    assert [s["Id"] for s in both.json()["Subscriptions"]] == [sub.pk]
    assert api.get("getsubscriptionsforcustomer", customerId="abc").status_code == 400
    unknown = api.get("getsubscriptionsforcustomer", customerEmail="nobody@example.com")
    assert unknown.status_code == 404


def test_the_openapi_schema_is_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/subscription/getsubscription" in schema.content.decode()


def test_an_admin_creates_a_credential_sees_the_secret_once_and_revokes_it(login, sm2, sub):
    admin = login(sm2, "admin")
    page = admin.post("/settings/api-credentials/", {"label": "Shop sync"}).content.decode()
    credential = ApiCredential.objects.get(label="Shop sync")
    secret = page.split('id="api-secret">')[1].split("<")[0]
    assert credential.client == sm2 and credential.matches(secret)
    listing = admin.get("/settings/").content.decode()
    assert credential.key_id in listing and secret not in listing
    token = base64.b64encode(f"{credential.key_id}:{secret}".encode()).decode()
    url = f"{BASE}getsubscription?subscriptionId={sub.pk}"
    assert admin.get(url, HTTP_AUTHORIZATION=f"Basic {token}").status_code == 200
    admin.post(f"/settings/api-credentials/{credential.pk}/revoke/")
    assert admin.get(url, HTTP_AUTHORIZATION=f"Basic {token}").status_code == 401


def test_credentials_are_for_admins_of_their_own_client(login, sm2, api_for):
    support = login(sm2, "support")
    assert support.post("/settings/api-credentials/", {"label": "x"}).status_code == 403
    theirs = api_for(ClientFactory()).credential
    admin = login(sm2, "admin")
    assert admin.post(f"/settings/api-credentials/{theirs.pk}/revoke/").status_code == 404
    assert ApiCredential.objects.get(pk=theirs.pk).revoked_at is None


def test_an_idempotency_key_replays_the_first_answer_without_a_second_change(api, monthly):
    body = purchase_body(monthly)
    first = api.post("createpurchase", body, key="order-7")
    again = api.post("createpurchase", body, key="order-7")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert Purchase.objects.filter(customer__email="b2b@example.com").count() == 1
    other = api.post(
        "createpurchase", purchase_body(monthly, ConfirmAutoRenewal=True), key="order-7"
    )
    assert other.status_code == 409 and "different request" in other.json()["ResultMessage"]
    fresh_key = api.post("createpurchase", body, key="order-8")
    assert fresh_key.json()["PurchaseId"] != first.json()["PurchaseId"]


def test_a_refusal_is_replayed_too_and_renewal_charges_once(api, sub):
    renew = {"SubscriptionId": sub.pk}
    first = api.post("renewsubscription", renew, key="renew-1")
    second = api.post("renewsubscription", renew, key="renew-1")
    assert first.json() == second.json() and fresh(sub).last_interval_no == 2
    bad = {"SubscriptionId": sub.pk, "Items": [9]}
    assert api.post("deactivatesubscriptionitems", bad, key="d-1").status_code == 404
    assert api.post("deactivatesubscriptionitems", bad, key="d-1").status_code == 404


def test_keys_belong_to_one_credential(api_for, sm2, monthly):
    one, two = api_for(sm2, "one"), api_for(sm2, "two")
    one.post("createpurchase", purchase_body(monthly), key="k")
    two.post("createpurchase", purchase_body(monthly), key="k")
    assert Purchase.objects.filter(customer__email="b2b@example.com").count() == 2


def test_over_the_rate_limit_is_429(api, sub, settings):
    settings.API_RATE_LIMIT = "3/m"
    answers = [api.get("getsubscription", subscriptionId=sub.pk) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "throttled" in answers[3].json()["ResultMessage"].lower()
    assert int(answers[3]["Retry-After"]) <= 60
    assert "throttled" in answers[-1].json()["ResultMessage"].lower()


def test_the_docs_page_is_served_without_a_cdn(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page and "/static/drf_spectacular_sidecar/" in page
    assert assets_from_elsewhere(page) == []


def test_numbers_too_large_for_the_database_are_400_not_500(api, monthly, sub):
    huge = 2**70
    body = purchase_body(monthly, Items=[{"ProductId": huge, "Quantity": huge}])
    answer = api.post("createpurchase", body)
    assert answer.status_code == 400
    assert {"Items.0.ProductId", "Items.0.Quantity"} <= set(answer.json()["Errors"])
    items = api.post("deactivatesubscriptionitems", {"SubscriptionId": sub.pk, "Items": [huge]})
    assert items.status_code == 400
    assert api.get("getsubscriptionsforcustomer", customerId=str(huge)).status_code == 400


def test_text_too_long_for_its_column_is_400_not_500(api, monthly):
    customer = {"Email": "long@example.com", "FirstName": "x" * 101, "ReferenceId": "r" * 101}
    answer = api.post("createpurchase", purchase_body(monthly, Customer=customer))
    assert answer.status_code == 400
    assert {"Customer.FirstName", "Customer.ReferenceId"} <= set(answer.json()["Errors"])


@pytest.mark.parametrize("given", ["int", "digits", "s-prefixed"])
def test_a_subscription_id_is_accepted_as_1042_or_quoted_or_with_an_s(api, sub, given):
    value = {"int": sub.pk, "digits": str(sub.pk), "s-prefixed": f"S{sub.pk}"}[given]
    answer = api.post(
        "updatesubscriptionrenewaltype", {"SubscriptionId": value, "RenewalType": "Manual"}
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["Subscription"]["Id"] == sub.pk


@pytest.mark.parametrize("value", [True, 1.5, "S", "12x", -3, 0, [1], None])
def test_anything_else_as_a_subscription_id_is_a_400_naming_the_field(api, sub, value):
    answer = api.post(
        "updatesubscriptionrenewaltype", {"SubscriptionId": value, "RenewalType": "Manual"}
    )
    assert answer.status_code == 400
    assert "SubscriptionId" in answer.json()["Errors"]


def test_the_schema_says_subscription_ids_are_integers(client):
    schema = client.get("/api/schema/?format=json").json()
    change = schema["components"]["schemas"]["RenewalTypeInput"]["properties"]
    integer, text = change["SubscriptionId"]["oneOf"]
    assert integer["type"] == "integer" and integer["minimum"] == 1
    assert text["pattern"] == "^S?[1-9][0-9]{0,16}$"
    purchase = schema["components"]["schemas"]["PurchaseInput"]["properties"]
    assert purchase["Items"]["minItems"] == 1


def test_an_impossible_or_far_next_billing_date_is_refused_with_a_message(api, sub):
    for value, message in [
        ("2027-02-30T00:00:00Z", "not an RFC 3339 date-time"),
        ("9999-12-31T00:00:00Z", "at most 10 years ahead"),
    ]:
        body = {"SubscriptionId": sub.pk, "NextBillingDate": value}
        answer = api.post("updatenextbillingdate", body)
        assert answer.status_code == 400, answer.content
        assert message in answer.json()["ResultMessage"]


def test_a_nul_in_a_customer_search_is_no_such_customer(api, sm2, monthly):
    answer = api.get("getsubscriptionsforcustomer", customerEmail="a\x00@example.com")
    assert answer.status_code == 404
    assert answer.json()["ResultMessage"] == "No such customer."
