from django.urls import path

from collectors.views import RemoteWriteView

urlpatterns = [
    path("api/v1/write", RemoteWriteView.as_view(), name="prometheus-remote-write"),
]
