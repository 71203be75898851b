"""Routes of the inventory: agents register here. Included at the site's root by ``twinsite.urls``."""

from django.urls import path

from hosts.views import HostRegisterView

urlpatterns = [
    path("api/hosts/register", HostRegisterView.as_view(), name="hosts-register"),
]
