"""Routes of the command lifecycle. Included at the site's root by ``twinsite.urls``.

Under daphne the agents' long poll (``api/commands/pending``) is answered by
``commands.longpoll`` before Django; the route here serves it under any other
server and names it for the schema.
"""

from django.urls import path

from commands.views import (
    ActionCatalogueView,
    CommandCancelView,
    CommandDetailView,
    CommandResultView,
    CommandsView,
    pending_view,
)

urlpatterns = [
    path("api/commands", CommandsView.as_view(), name="commands"),
    path("api/commands/actions", ActionCatalogueView.as_view(), name="commands-actions"),
    path("api/commands/pending", pending_view, name="commands-pending"),
    path("api/commands/<int:command_id>", CommandDetailView.as_view(), name="command"),
    path("api/commands/<int:command_id>/cancel", CommandCancelView.as_view(), name="command-cancel"),
    path("api/commands/<int:command_id>/result", CommandResultView.as_view(), name="command-result"),
]
