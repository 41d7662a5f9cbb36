"""A streamed answer is moderated as it streams: a blocklisted word that arrives in two pieces is
held back until the filters can judge it, so no part of it reaches the client."""
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
