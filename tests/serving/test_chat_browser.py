"""The chat page in a real Chromium, served by uvicorn from rankloop.asgi under the site's CSP:
type, stream, stop, regenerate, vote; no CSP violation."""
import re

import pytest
from django.db import connections
from playwright.sync_api import expect

from serving.models import ChatComparison, Feedback, Message
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(20000)
        page.csp_errors = []
        page.on("console", lambda m: page.csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
        yield page
        browser.close()
        connections.close_all()


def test_type_stream_stop_regenerate_and_vote(live_asgi, serving_setup, page, settings):
    settings.RANKLOOP_SERVING_DEFAULT_MAX_TOKENS = 400  # long enough to stop it midway
    page.goto(f"{live_asgi}/accounts/login/")
    page.keyboard.type("chatter")
    page.keyboard.press("Tab")
    page.keyboard.type("chatter-secret-pw")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_asgi}/")

    page.goto(f"{live_asgi}/chat/")
    page.get_by_role("button", name="New chat").click()
    page.wait_for_selector("#chat-input")
    expect(page.locator("#chat-input")).to_be_focused()

    # Type, Enter sends; the answer streams in; Esc stops it.
    page.keyboard.type("Tell me about *ranking*")
    page.keyboard.press("Enter")
    expect(page.locator(".msg-live")).to_have_text(re.compile(r".{4,}"))  # streaming: text, not done yet
    assert page.locator("#chat-stop").is_visible()
    page.keyboard.press("Escape")
    page.wait_for_selector("text=Stopped before the end.")
    expect(page.locator("#chat-stop")).to_be_hidden()
    stopped = Message.objects.get(role="assistant")
    assert stopped.status == Message.Status.INCOMPLETE and stopped.content

    # A short answer to the end, then regenerate it and say which is better.
    settings.RANKLOOP_SERVING_DEFAULT_MAX_TOKENS = 6
    page.fill("#chat-input", "Again")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg-regenerate")
    page.locator(".msg-streaming").wait_for(state="detached")
    page.get_by_role("button", name="Regenerate").click()
    page.wait_for_selector("text=Which answer is better?")
    page.get_by_role("button", name="This answer").click()
    page.locator(".msg-compare").wait_for(state="detached")
    comparison = ChatComparison.objects.get()
    assert comparison.choice == "second" and comparison.voter == serving_setup["user"]

    page.fill(".msg-assistant:last-child .msg-comment", "nice")
    page.locator(".msg-assistant:last-child").get_by_role("button", name="Good answer").click()
    page.wait_for_selector(".msg-assistant:last-child [aria-label='Good answer'][aria-pressed=true]")
    feedback = Feedback.objects.get()
    assert feedback.thumbs_up and feedback.comment == "nice" and feedback.message_id == comparison.second_id
    assert page.csp_errors == []
