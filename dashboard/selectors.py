"""What the dashboard page needs to know about the server and the person looking at it."""

from __future__ import annotations

from typing import Any, TypedDict

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from commands.actions import SHELL_PERMISSION
from commands.selectors import commands_readable_by

# The Socket.IO namespace the twin serves (the live side's, twin/live/; fixed by the seed contract).
NAMESPACE = "/digital-twin"
# The permissions the catalogue's actions name (GET /api/commands/actions, "permissions").
COMMAND_PERMISSIONS = ("commands.add_command", SHELL_PERMISSION)
# The API routes the page calls (dashboard/static/dashboard/js/api.js), by the name the page
# knows them by: (route name, sample arguments). A sample argument is a marker no route
# contains, replaced by ``{argument}`` for the page to fill in.
API_ROUTES: dict[str, tuple[str, dict[str, str | int]]] = {
    "twinState": ("twin-state", {}),
    "hostMetrics": ("host-metrics", {"hostname": "HOSTNAME"}),
    "hostEvents": ("host-events", {"hostname": "HOSTNAME"}),
    "commands": ("commands", {}),
    "commandActions": ("commands-actions", {}),
    "command": ("command", {"command_id": 2147483647}),
}


class PageUser(TypedDict):
    username: str | None
    isStaff: bool
    canCommand: bool
    permissions: list[str]


class PageFeatures(TypedDict):
    commands: bool
    history: bool


class PageConfig(TypedDict):
    publicRead: bool
    features: PageFeatures
    namespace: str
    coreHostname: str
    staleAfterSeconds: float
    offlineAfterSeconds: float
    csrfToken: str
    user: PageUser
    urls: dict[str, str]


def route_exists(path: str) -> bool:
    """Whether this server routes ``path`` (a feature another app adds, such as commands or history)."""
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def api_urls() -> dict[str, str]:
    """The API paths the page calls, as templates (``/api/hosts/{hostname}/metrics``).

    A route this server lacks (a feature another app adds) is left out; the
    page does not call it (``features`` says so).
    """
    urls = {}
    for name, (route, samples) in API_ROUTES.items():
        try:
            url = reverse(route, kwargs=samples)
        except NoReverseMatch:
            continue
        for argument, sample in samples.items():
            url = url.replace(str(sample), "{" + argument + "}")
        urls[name] = url
    return urls


def page_features() -> PageFeatures:
    """The server features the page can use, found by their routes.

    The page still hides a panel whose endpoint answers 404; knowing the
    routes up front spares it requests that would fail (and log errors).
    """
    return {
        "commands": route_exists("/api/commands/actions"),
        "history": route_exists("/api/hosts/probe-host/metrics"),
    }


def dashboard_config(*, user: User | AnonymousUser, csrf_token: str) -> PageConfig:
    """The page's configuration, embedded in it as JSON (``json_script``).

    ``canCommand`` only decides whether the "send command" form is shown; the
    server checks the permission again on every command.
    """
    authenticated = bool(user.is_authenticated)
    features = page_features()
    # The command panel only for those who may read commands: asking on behalf of anyone
    # else would be refused (and the browser logs every refusal as an error).
    features["commands"] = features["commands"] and commands_readable_by(user)
    return {
        "publicRead": settings.TWIN_PUBLIC_READ,
        "features": features,
        "namespace": NAMESPACE,
        "coreHostname": settings.TWIN_CORE_HOSTNAME,
        "staleAfterSeconds": settings.TWIN_STALE_AFTER_SECONDS,
        "offlineAfterSeconds": settings.TWIN_OFFLINE_AFTER_SECONDS,
        "csrfToken": csrf_token,
        "user": {
            "username": user.get_username() if authenticated else None,
            "isStaff": authenticated and user.is_staff,
            "canCommand": authenticated and user.has_perm("commands.add_command"),
            # Which catalogue actions the form offers (``shell`` needs its own permission).
            "permissions": [p for p in COMMAND_PERMISSIONS if authenticated and user.has_perm(p)],
        },
        "urls": {
            "login": f"{reverse('dashboard:login')}?next=/",
            "logout": reverse("dashboard:logout"),
            "admin": reverse("admin:index"),
            **api_urls(),
        },
    }


def import_map(*, static: Any) -> dict[str, dict[str, str]]:
    """The browser import map: bare module names to the vendored files (``static`` is Django's ``static``)."""
    return {
        "imports": {
            "three": static("dashboard/vendor/three/three.module.js"),
            "three/addons/": static("dashboard/vendor/three/addons/"),
            "socket.io-client": static("dashboard/vendor/socket.io-client/socket.io.esm.min.js"),
            "uplot": static("dashboard/vendor/uplot/uPlot.esm.js"),
        }
    }
