"""URLs of the customers app: the customer list and entering the portal."""

from django.urls import path

from . import portal_views, views

urlpatterns = [
    path("customers/", views.customer_list, name="customers"),
    path("portal/enter/<str:token>/", portal_views.enter, name="portal-enter"),
    path("portal/link/<slug:slug>/", portal_views.request_link, name="portal-request-link"),
    path("portal/leave/", portal_views.leave, name="portal-leave"),
]
