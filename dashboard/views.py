"""The dashboard page at ``/``, and the sign-in and sign-out pages it sends people to."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.views import LoginView, LogoutView, redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views import View
from django.views.decorators.csrf import ensure_csrf_cookie

from dashboard.selectors import dashboard_config, import_map


def _json_for_script(value: object) -> str:
    """JSON safe inside a <script> element (as ``json_script`` escapes it)."""
    text = json.dumps(value)
    return text.replace("<", "\\u003C").replace(">", "\\u003E").replace("&", "\\u0026")


class DashboardView(View):
    """``GET /``: the live dashboard. With private reads, anonymous visitors are sent to sign in first."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.TWIN_PUBLIC_READ and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), login_url=reverse("dashboard:login"))
        # The page loads nothing from another host; the project's policy
        # (common.middleware) lets the inline import map run by this request's nonce.
        response = render(
            request,
            "dashboard/index.html",
            {
                "config": dashboard_config(user=request.user, csrf_token=get_token(request)),
                "import_map": mark_safe(_json_for_script(import_map(static=static))),  # escaped above
                "nonce": request.csp_nonce,  # type: ignore[attr-defined]
            },
        )
        # The page embeds who is looking (and a CSRF token): never from a shared cache.
        response["Cache-Control"] = "no-store"
        return response


class DashboardLoginView(LoginView):
    """``/login/``: Django's sign-in with the dashboard's look; back to ``next`` (``/``) afterwards."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("dashboard:index")


class DashboardLogoutView(LogoutView):
    """``POST /logout/``: sign out, then the sign-in page."""

    def get_default_redirect_url(self) -> str:
        return reverse("dashboard:login")


dashboard_page = ensure_csrf_cookie(DashboardView.as_view())


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico on pages that name no icon (the admin, the API docs)."""
    return HttpResponsePermanentRedirect(static("dashboard/favicon.svg"))
