"""Small things a user sees, in a real Chromium: the icon, styled number inputs, rating labels a
screen reader can say, and the marker on an answer cut at the token limit."""
import pytest
from django.urls import reverse

from labeling.actions.tasks import create_task
from labeling.models import Candidate, Prompt
from tests.support.browser import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


def logged_in(page, live_server, client, user):
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    return page


def test_pages_link_an_icon_that_loads_and_nothing_they_ask_for_is_missing(live_server, browser_page, client,
                                                                         admin_user, make_project):
    project = make_project(name="Icons")
    page = logged_in(browser_page, live_server, client, admin_user)
    failed = []
    page.on("response", lambda response: response.status >= 400 and failed.append((response.status, response.url)))
    for url in (reverse("labeling:home"), reverse("labeling:project", args=[project.slug]),
                reverse("models_app:project", args=[project.slug])):
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
    assert failed == []
    icon = page.locator("link[rel=icon]").get_attribute("href")
    response = page.request.get(live_server.url + icon)
    assert response.status == 200 and "svg" in response.headers["content-type"]
    legacy = page.request.get(live_server.url + "/favicon.ico")  # what the admin's pages make browsers ask for
    assert legacy.status == 200 and legacy.url.endswith(icon)


def test_number_inputs_look_like_the_other_inputs(live_server, browser_page, client, admin_user, make_project):
    project = make_project(name="Numbers")
    page = logged_in(browser_page, live_server, client, admin_user)
    page.goto(live_server.url + reverse("models_app:project", args=[project.slug]))
    style = ("e => { const s = getComputedStyle(e); "
             "return [s.borderTopWidth, s.borderRadius, s.paddingLeft, s.display]; }")
    number = page.locator("input[type=number]").first.evaluate(style)
    text = page.locator("input[type=text]").first.evaluate(style)
    assert number == text


def test_rating_selects_and_the_cut_marker_for_the_annotator(live_server, browser_page, client, make_project,
                                                            annotator):
    project = make_project(name="Rate", annotators=[annotator], candidates_per_prompt=2, overlap=1,
                           rating_aspects=["helpful"], rating_scale=5, shuffle_positions=False)
    prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": "Tell me a story"}])
    create_task(prompt, [
        Candidate.objects.create(prompt=prompt, text="Once upon a time, there was a",
                                 decoding={"max_new_tokens": 8, "finish_reason": "length"}),
        Candidate.objects.create(prompt=prompt, text="The end.",
                                 decoding={"max_new_tokens": 8, "finish_reason": "stop"}),
    ])
    page = logged_in(browser_page, live_server, client, annotator)
    page.goto(live_server.url + reverse("labeling:annotate", args=[project.slug]))

    first, second = page.locator("article.candidate").all()
    assert first.get_by_text("cut at the token limit").is_visible()
    assert second.get_by_text("cut at the token limit").count() == 0

    page.keyboard.press("d")  # opens ratings and flags
    rating = page.get_by_role("combobox", name="Helpful, answer A (1 = poor, 5 = excellent)")
    assert rating.is_visible()
    rating.select_option(label="5 (excellent)")
    assert rating.input_value() == "5"
