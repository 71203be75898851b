"""Routes of the physical twin. Included at the site's root by ``twinsite.urls``."""

from django.urls import path

from facility.views import CapacityView, RackPowerView

urlpatterns = [
    path("api/racks/<str:name>/power", RackPowerView.as_view(), name="rack-power"),
    path("api/capacity", CapacityView.as_view(), name="capacity"),
]
