"""A streamed answer is moderated as it streams: a blocklisted word that arrives in two pieces is
held back until the filters can judge it, so no part of it reaches the client."""
import time

import openai
import pytest

from models_app.models import Deployment


@pytest.fixture
def streamed(live_asgi, serving_setup, scripted_upstream):
    """Stream the scripted pieces through rankloop: (the text the client got, its finish reason)."""
    project = serving_setup["project"]
    Deployment.objects.filter(project=project, is_active=True).update(upstream=scripted_upstream.url)
    api = openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=serving_setup["token"], max_retries=0, timeout=30)

    def stream(pieces, blocklist):
        project.moderation_blocklist = blocklist
        project.save(update_fields=["moderation_blocklist"])
        scripted_upstream.pieces = pieces
        text, finish = [], None
        for chunk in api.chat.completions.create(model=project.slug, messages=[{"role": "user", "content": "Hi"}],
                                                 max_tokens=16, stream=True):
            for c in chunk.choices:
                text.append(c.delta.content or "")
                finish = c.finish_reason or finish
        return "".join(text), finish

    return stream


def test_it_sends_no_part_of_a_blocklisted_word_split_over_two_pieces(streamed):
    text, finish = streamed(["Well", ",", " da", "rn", " it", "."], ["darn"])
    assert (text.rstrip(), finish) == ("Well,", "content_filter")


def test_it_sends_a_word_that_only_began_like_a_blocklisted_one(streamed):
    assert streamed(["The", " dar", "ling", " buds"], ["darn"]) == ("The darling buds", "stop")


def test_it_sends_what_it_held_back_when_the_answer_ends_there(streamed):
    assert streamed(["Say", " da"], ["darn"]) == ("Say da", "stop")


def test_it_holds_back_the_start_of_a_blocklisted_phrase(streamed):
    text, finish = streamed(["A", " bad", " th", "ing", " here"], ["bad thing"])
    assert (text.rstrip(), finish) == ("A", "content_filter")


def test_a_cut_answer_of_several_stops_its_upstream_request_and_the_others_go_on(live_asgi, serving_setup,
                                                                                   scripted_upstream):
    project = serving_setup["project"]
    project.moderation_blocklist = ["darn"]
    project.save(update_fields=["moderation_blocklist"])
    Deployment.objects.filter(project=project, is_active=True).update(upstream=scripted_upstream.url)
    scripted_upstream.delay = 0.05
    # n answers from one seed: the gateway asks for seeds 10 and 11
    scripted_upstream.pieces = lambda body: (["Well", " darn", " it"] + [" more"] * 30 if body["seed"] == 10
                                             else ["Fine"] + [" words"] * 5)
    api = openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=serving_setup["token"], max_retries=0, timeout=30)
    text, finish = {0: "", 1: ""}, {}
    for chunk in api.chat.completions.create(model=project.slug, messages=[{"role": "user", "content": "Hi"}],
                                             max_tokens=64, n=2, seed=10, stream=True):
        for c in chunk.choices:
            text[c.index] += c.delta.content or ""
            finish[c.index] = c.finish_reason or finish.get(c.index)
    assert (text[0].rstrip(), finish[0]) == ("Well", "content_filter")
    assert (text[1], finish[1]) == ("Fine" + " words" * 5, "stop")
    deadline = time.monotonic() + 5
    while len(scripted_upstream.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    sent = dict(scripted_upstream.sent)
    assert sent[11] == 6 and sent[10] < 15  # the cut one's request was closed, 30 pieces early
