from csp.decorators import csp_exempt
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import schema, views  # noqa: F401 - schema registers the auth scheme

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
    "addsubscriptionitem",
    "updatesubscriptionitem",
    "increasesubscriptionitemquantity",
    "updatesubscriptionitemprice",
    "refundpurchase",
    "getpurchasedocuments",
    "getdocumentpdf",
]

urlpatterns = [
    *(path(f"subscription/{name}", getattr(views, name), name=f"api-{name}") for name in ENDPOINTS),
    path("subscription/<str:name>", views.unknown_endpoint),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI runs inline scripts: exempt from the Content-Security-Policy.
    path(
        "docs/",
        csp_exempt()(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]
