"""Every page carries a strict Content-Security-Policy and a Permissions-Policy; the page that
shows a new token is not stored; the API schema and docs need a login; templates hold no
inline script or style the policy would refuse."""
import re
from pathlib import Path

import pytest
from django.conf import settings

from rlhf.models import Round

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[1]


def directives(response):
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.fixture
def pages(make_project, make_tasks, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    project = make_project("Headers", annotators=[admin_user])
    make_tasks(project, 1)
    round_ = Round.objects.create(project=project, number=1)
    return ["/", f"/p/{project.slug}/", f"/p/{project.slug}/annotate/", "/accounts/tokens/", "/accounts/password/",
            "/rounds/", f"/rounds/p/{project.slug}/", f"/rounds/{round_.pk}/", "/models/", "/models/playground/",
            f"/models/projects/{project.slug}/", "/admin/", "/admin/auth/user/", "/api/v1/assignments/"]


def test_every_page_carries_a_strict_csp_and_a_permissions_policy(client, admin_user, pages):
    client.force_login(admin_user)
    for url in pages + ["/accounts/logout/"]:
        response = client.get(url) if url != "/accounts/logout/" else client.post(url, follow=True)
        assert response.status_code == 200, url
        policy = directives(response)
        assert policy["default-src"] == ["'self'"], url
        assert policy["script-src"] == ["'self'"], url
        assert policy["style-src"] == ["'self'"], url
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"], url
        assert "camera=()" in response["Permissions-Policy"], url


def test_the_login_and_lockout_pages_carry_the_policy_too(client):
    response = client.get("/accounts/login/")
    assert directives(response)["script-src"] == ["'self'"] and "Permissions-Policy" in response


def test_the_api_docs_pages_allow_inline_styles_but_still_only_local_scripts(client, admin_user):
    client.force_login(admin_user)
    for url in ("/api/v1/docs/", "/api/v1/redoc/"):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = directives(response)
        assert policy["script-src"] == ["'self'"], url
        assert policy["style-src"] == ["'self'", "'unsafe-inline'"], url
        assert "Permissions-Policy" in response


def test_the_browsable_api_allows_inline_styles_but_still_only_local_scripts(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/api/v1/projects/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    policy = directives(response)
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'", "'unsafe-inline'"]


def test_the_token_page_is_not_stored_by_the_browser(client, annotator):
    client.force_login(annotator)
    created = client.post("/accounts/tokens/", {"action": "create"})
    assert "no-store" in created["Cache-Control"]
    assert "no-store" in client.get("/accounts/tokens/")["Cache-Control"]


def test_the_schema_and_the_docs_need_a_login(client):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/schema/").status_code == 401
    for url in ("/api/v1/docs/", "/api/v1/redoc/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"hx-on|javascript:", re.I), "inline code"),
]


def test_no_template_has_inline_script_or_style():
    """The policy refuses them in the browser; this finds them before a person does."""
    folders = [Path(settings.BASE_DIR) / "templates"] + [ROOT / app / "templates"
                                                          for app in ("labeling", "models_app", "rlhf")]
    found = []
    for folder in folders:
        for template in folder.rglob("*.html"):
            if "drf_spectacular" in template.parts:  # the docs pages have their own policy
                continue
            text = template.read_text()
            for pattern, what in INLINE:
                for match in pattern.finditer(text):
                    found.append(f"{template.relative_to(ROOT)}: {what}: {match.group(0)}")
    assert not found, "\n".join(found)
