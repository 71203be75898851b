"""Routes of alerts. Included at the site's root by ``twinsite.urls``."""

from django.urls import path

from alerts.views import AlertHistoryView, AlertsView, RuleDetailView, RulesView

urlpatterns = [
    path("api/alerts", AlertsView.as_view(), name="alerts"),
    path("api/alerts/history", AlertHistoryView.as_view(), name="alerts-history"),
    path("api/alerts/rules", RulesView.as_view(), name="alert-rules"),
    path("api/alerts/rules/<int:rule_id>", RuleDetailView.as_view(), name="alert-rule"),
]
