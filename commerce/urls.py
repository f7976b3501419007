"""The root URLconf (project wiring): the commerce app's own pages, then each
app's URLs, included by name so that this module imports no app above
``commerce``."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("purchases/", views.purchase_search, name="purchases"),
    path("purchases/export.csv", views.purchase_export, name="purchase-export"),
    path("", include("customers.urls")),
    path("", include("subscriptions.urls")),
    path("api/", include("subscriptions.api.urls")),
    path("admin/", admin.site.urls),
]
