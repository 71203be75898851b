"""The page at /, sign-in and sign-out, and what the page is told (without a browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.urls import resolve

from dashboard.selectors import page_features, route_exists


def page_config(response) -> dict:
    match = re.search(rb'<script id="dashboard-config" type="application/json">(.*?)</script>', response.content)
    return json.loads(match.group(1))


def import_map(response) -> dict:
    match = re.search(rb'<script type="importmap" nonce="[^"]+">(.*?)</script>', response.content)
    return json.loads(match.group(1))


@pytest.fixture
def public(settings):
    settings.TWIN_PUBLIC_READ = True


@pytest.fixture
def private(settings):
    settings.TWIN_PUBLIC_READ = False


def test_with_public_reads_the_page_opens_directly(client, db, public):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    config = page_config(response)
    assert config["publicRead"] is True
    assert config["namespace"] == "/digital-twin"
    assert config["user"] == {"username": None, "isStaff": False, "canCommand": False, "permissions": []}
    assert b'href="/login/?next=/"' in response.content


def test_with_private_reads_an_anonymous_visitor_is_sent_to_sign_in(client, db, private):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_signing_in_returns_to_the_dashboard_with_who_is_looking(client, django_user_model, private):
    user = django_user_model.objects.create_user(username="alice", password="pw-for-tests-only", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="view_host"))
    page = client.get("/login/?next=/")
    assert page.status_code == 200
    assert b'name="next" value="/"' in page.content

    refused = client.post("/login/", {"username": "alice", "password": "wrong", "next": "/"})
    assert refused.status_code == 200
    assert b"do not match" in refused.content

    signed_in = client.post("/login/", {"username": "alice", "password": "pw-for-tests-only", "next": "/"})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/"
    config = page_config(client.get("/"))
    assert config["user"] == {
        "username": "alice",
        "isStaff": True,
        "canCommand": False,
        "permissions": [],
    }


def test_a_superuser_is_offered_the_send_command_form(client, django_user_model, private):
    # Signed in without the sign-in form (test_signing_in_... covers it): django-axes's
    # backend wants the request, which the test client's login() never passes.
    client.force_login(django_user_model.objects.create_superuser(username="root", password="pw-for-tests-only"))
    user = page_config(client.get("/"))["user"]
    assert user["canCommand"] is True
    assert user["permissions"] == ["commands.add_command", "commands.run_shell"]


def test_signing_out_takes_a_post_and_leads_to_the_sign_in_page(client, django_user_model, private):
    client.force_login(django_user_model.objects.create_user(username="bob", password="pw-for-tests-only"))
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_the_page_loads_nothing_from_another_host(client, db, public):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert response["Cache-Control"] == "no-store"
    for url in re.findall(rb'(?:src|href)="([^"]+)"', response.content):
        assert url.startswith(b"/"), url
    for url in import_map(response)["imports"].values():
        assert url.startswith("/static/")


def test_every_import_of_the_pages_modules_resolves_to_a_committed_file(client, db, public):
    """Bare names through the import map, relative paths beside the importing file."""
    imports = import_map(client.get("/"))["imports"]

    def static_file(url: str):
        path = finders.find(url.removeprefix("/static/"))
        assert path, f"{url} is not a static file"
        return path

    for url in imports.values():
        if not url.endswith("/"):
            static_file(url)
    pending = ["/static/dashboard/js/main.js", imports["three/addons/"] + "controls/OrbitControls.js"]
    seen = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        source = Path(static_file(url)).read_text(encoding="utf-8")
        for target in re.findall(r"""(?:^|\n)\s*(?:import|export)[^;'"]*?from\s*["']([^"']+)["']""", source):
            if target.startswith("."):
                pending.append(url.rsplit("/", 1)[0] + "/" + target.removeprefix("./"))
            else:
                prefix = next((k for k in imports if k.endswith("/") and target.startswith(k)), None)
                resolved = imports[prefix] + target.removeprefix(prefix) if prefix else imports.get(target)
                assert resolved, f"{url} imports {target}, which the import map does not name"
                pending.append(resolved)
    assert "/static/dashboard/js/floor.js" in seen
    assert "/static/dashboard/vendor/three/three.core.js" in seen


def test_the_page_is_told_the_api_urls_it_calls_by_the_servers_routes(client, db, public):
    urls = page_config(client.get("/"))["urls"]
    assert {key: urls[key] for key in ("twinState", "hostMetrics", "hostEvents", "command")} == {
        "twinState": "/api/twin/state",
        "hostMetrics": "/api/hosts/{hostname}/metrics",
        "hostEvents": "/api/hosts/{hostname}/events",
        "command": "/api/commands/{command_id}",
    }
    for name in ("twinState", "hostMetrics", "hostEvents", "commands", "commandActions", "command"):
        path = urls[name].replace("{hostname}", "titan-01").replace("{command_id}", "7")
        assert resolve(path).url_name, name


def test_only_the_api_client_asks_the_server():
    """Every request of the page goes through api.js (its URLs from the config, one error shape, one stale guard)."""
    scripts = Path(finders.find("dashboard/js/api.js")).parent
    asking = sorted(
        path.name for path in scripts.glob("*.js") if re.search(r"\bfetch\(|XMLHttpRequest", path.read_text())
    )
    assert asking == ["api.js"]


def test_features_are_found_by_the_servers_routes():
    assert route_exists("/api/twin/state")
    assert not route_exists("/api/no-such-thing")
    features = page_features()
    assert features["commands"] == route_exists("/api/commands/actions")
    assert features["history"] == route_exists("/api/hosts/probe-host/metrics")


@pytest.mark.django_db
def test_the_command_panel_is_announced_only_to_those_who_may_read_commands(django_user_model):
    from django.contrib.auth.models import AnonymousUser, Permission

    from dashboard.selectors import dashboard_config

    assert route_exists("/api/commands/actions")
    assert dashboard_config(user=AnonymousUser(), csrf_token="t")["features"]["commands"] is False
    reader = django_user_model.objects.create_user("reader", password="a-long-password-1")
    assert dashboard_config(user=reader, csrf_token="t")["features"]["commands"] is False
    reader.user_permissions.add(Permission.objects.get(codename="view_command"))
    reader = django_user_model.objects.get(pk=reader.pk)  # permissions are cached per instance
    assert dashboard_config(user=reader, csrf_token="t")["features"]["commands"] is True


@pytest.mark.django_db
def test_favicon_ico_redirects_anyone_to_the_dashboards_svg_icon(client, settings):
    settings.TWIN_PUBLIC_READ = False
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/dashboard/favicon.svg"
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")
