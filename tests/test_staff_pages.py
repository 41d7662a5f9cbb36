"""One behaviour on every staff page: anonymous visitors go to the app's login page, logged-in
annotators get the app's 403 page (never the Django admin login)."""
import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

STAFF_NAMESPACES = ("models_app", "rlhf")
STAFF_PAGES = ["labeling:project"]


def _names(patterns, prefix):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _names(pattern.url_patterns, f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{prefix}{pattern.name}", list(pattern.pattern.converters)


def staff_urls(project_slug):
    """Every URL of the staff apps (so a page added later is covered too), and the staff project page."""
    args = {"slug": project_slug, "pk": 1, "round_id": 1, "action": "cancel"}
    found = [(name, params) for name, params in _names(get_resolver().url_patterns, "")
             if name.split(":")[0] in STAFF_NAMESPACES or name in STAFF_PAGES]
    assert len(found) > 15  # the resolver walk found the apps' pages
    return sorted({reverse(name, kwargs={p: args[p] for p in params}) for name, params in found})


@pytest.fixture
def urls(make_project):
    return staff_urls(make_project(name="Staff pages").slug)


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitors_are_sent_to_the_app_login_page(client, urls, method):
    for url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response.url == f"{reverse('login')}?next={url}", url


@pytest.mark.parametrize("method", ["get", "post"])
def test_annotators_get_the_apps_403_page(client, annotator, urls, method):
    client.force_login(annotator)
    for url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 403, url
        page = response.content.decode()
        assert "No access" in page and "Only staff can open this page." in page, url
        assert "Back to your projects" in page
