from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import views

ENDPOINTS = [
    "createpurchase",
    "getsubscription",
    "getsubscriptionsforcustomer",
    "updatesubscriptionrenewaltype",
    "deactivatesubscriptionitems",
    "reinstatesubscriptionitems",
    "removesubscriptionitem",
    "updatenextbillingdate",
    "renewsubscription",
]

urlpatterns = [
    *(path(f"subscription/{name}", getattr(views, name), name=f"api-{name}") for name in ENDPOINTS),
    path("subscription/<str:name>", views.unknown_endpoint),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
