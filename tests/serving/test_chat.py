"""The chat's stream (live, against transformers serve), and chat traffic flowing back into
labeling: conversations as prompts, in-chat comparisons as preference pairs in the export."""
import time

import httpx
from django.test import Client

from labeling.exporting import export_rows
from labeling.models import Annotation, PreferencePair, Prompt
from labeling.pair_filters import PairFilters
from serving import services
from serving.models import ChatComparison, Conversation, Message, RequestAudit


def _session_cookie(user):
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


def test_closing_the_chat_stream_marks_the_answer_incomplete(live_asgi, serving_setup, settings):
    settings.RANKLOOP_SERVING_DEFAULT_MAX_TOKENS = 400
    user, project = serving_setup["user"], serving_setup["project"]
    conversation = services.start_conversation(user, project)
    answer = services.send_message(conversation, "Tell me a long story")
    cookies = _session_cookie(user)
    with httpx.stream("GET", f"{live_asgi}/chat/m/{answer.pk}/stream/", cookies=cookies, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        deltas = 0
        for line in response.iter_lines():
            if line == "event: delta":
                deltas += 1
            if deltas >= 3:
                break
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer.refresh_from_db()
        if answer.status != Message.Status.STREAMING:
            break
        time.sleep(0.1)
    assert answer.status == Message.Status.INCOMPLETE
    assert answer.content and answer.completion_tokens < 400
    assert RequestAudit.objects.filter(channel="chat", status_code=499).count() == 1

    # A second stream of the same answer is refused; a new message streams to the end.
    again = httpx.get(f"{live_asgi}/chat/m/{answer.pk}/stream/", cookies=cookies, timeout=30)
    assert "not waiting" in again.text
    settings.RANKLOOP_SERVING_DEFAULT_MAX_TOKENS = 5
    second = services.send_message(conversation, "Short one")
    done = httpx.get(f"{live_asgi}/chat/m/{second.pk}/stream/", cookies=cookies, timeout=30)
    assert 'event: done\ndata: {"status": "complete"}' in done.text
    second.refresh_from_db()
    assert second.status == Message.Status.COMPLETE and second.completion_tokens == 5
    assert second.model_version == serving_setup["version"]

    # Someone else's answer does not stream.
    other = httpx.get(f"{live_asgi}/chat/m/{second.pk}/stream/", timeout=30)
    assert other.status_code == 401


def _answered(conversation, text, answer_text):
    answer = services.send_message(conversation, text)
    Message.objects.filter(pk=answer.pk).update(content=answer_text, status=Message.Status.COMPLETE)
    answer.refresh_from_db()
    return answer


def test_chat_traffic_becomes_prompts_and_preference_pairs(serving_setup, make_user):
    user, project = serving_setup["user"], serving_setup["project"]
    conversation = services.start_conversation(user, project)
    first = _answered(conversation, "What is RLHF?", "Learning from rankings.")
    second = services.regenerate(first)
    Message.objects.filter(pk=second.pk).update(content="Reinforcement learning from human feedback.",
                                                status=Message.Status.COMPLETE)
    second.refresh_from_db()
    comparison = services.compare(second, user, "second")
    services.give_feedback(second, user, thumbs_up=True, comment="clear")

    # Edit and resend: the old turn is hidden, the edited message gets a new answer.
    third = _answered(conversation, "And DPO?", "Direct preference optimization.")
    user_message = Message.objects.get(conversation=conversation, content="And DPO?")
    resent = services.edit_and_resend(user_message, "And PPO?")
    assert Message.objects.get(pk=third.pk).hidden and resent.status == Message.Status.PENDING
    assert [m.content for m in conversation.messages.filter(hidden=False, role="user")] == ["What is RLHF?", "And PPO?"]

    # An opted-out user's conversation never leaves the chat.
    shy = make_user("shy")
    from labeling.actions.memberships import add_annotator

    add_annotator(project, shy)
    services.set_opt_out(shy, True)
    shy_conversation = services.start_conversation(shy, project)
    shy_first = _answered(shy_conversation, "Private question", "Private answer.")
    shy_second = services.regenerate(shy_first)
    Message.objects.filter(pk=shy_second.pk).update(content="Another private answer.", status="complete")
    shy_second.refresh_from_db()
    services.compare(shy_second, shy, "first")

    added, skipped = services.comparisons_to_pairs(ChatComparison.objects.all())
    assert (added, skipped) == (1, 1)
    assert services.comparisons_to_pairs(ChatComparison.objects.all()) == (0, 2)  # idempotent
    comparison.refresh_from_db()
    pair = PreferencePair.objects.get(pk=comparison.pair_id)
    assert pair.chosen.text == "Reinforcement learning from human feedback."
    assert pair.prompt.source == "chat" and pair.chosen.external_source == "chat" and pair.source == "chat"
    assert Annotation.objects.get(task=pair.task).annotator == user  # the voter
    rows = list(export_rows(project, "conversational", PairFilters()))
    assert [r["chosen"][0]["content"] for r in rows] == ["Reinforcement learning from human feedback."]
    assert rows[0]["source"] == "chat"
    assert list(export_rows(project, "conversational", PairFilters(sources=["labels"]))) == []
    assert rows[0]["prompt"] == [{"role": "user", "content": "What is RLHF?"}]

    added, skipped = services.conversations_to_prompts(Conversation.objects.all())
    assert (added, skipped) == (1, 1)
    prompt = Prompt.objects.get(external_id=f"chat-conversation-{conversation.pk}")
    assert prompt.source == "chat"
    assert prompt.messages[-1] == {"role": "user", "content": "And PPO?"}
    assert not Prompt.objects.filter(messages__contains=[{"content": "Private question"}]).exists()


def test_a_chat_comparison_becomes_candidates_moderated_like_any_other(serving_setup):
    user, project = serving_setup["user"], serving_setup["project"]
    project.moderation_blocklist = ["darn"]
    project.save(update_fields=["moderation_blocklist"])
    conversation = services.start_conversation(user, project)
    first = _answered(conversation, "How was it?", "Darn awful.")
    second = services.regenerate(first)
    Message.objects.filter(pk=second.pk).update(content="Quite good.", status=Message.Status.COMPLETE)
    second.refresh_from_db()
    services.compare(second, user, "second")

    assert services.comparisons_to_pairs(ChatComparison.objects.all()) == (1, 0)
    pair = PreferencePair.objects.get()
    assert (pair.chosen.text, pair.rejected.text) == ("Quite good.", "Darn awful.")
    assert pair.rejected.is_flagged and not pair.chosen.is_flagged
    assert pair.rejected.moderation["filters"]["rules"]["reasons"] == ["blocklisted: darn"]
