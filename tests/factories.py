from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from commerce.models import Client, Product, StaffMembership
from customers.models import Customer


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Vendor {n}")
    slug = factory.Sequence(lambda n: f"vendor-{n}")
    sm_version = "2.0"
    grace_period_days = 7
    hold_days = 7


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    client = factory.SubFactory(ClientFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")
    currency = "EUR"
    initial_interval_months = 1
    initial_interval_days = 0
    interval_months = 1
    interval_days = 0


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    client = factory.SubFactory(ClientFactory)
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"staff{n}")
    password = factory.django.Password("pw-123456")


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory)
    client = factory.SubFactory(ClientFactory)
    role = "support"
