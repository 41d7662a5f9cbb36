"""The OpenAI-compatible API against a live rankloop (uvicorn, rankloop.asgi) in front of a real
`transformers serve` on the tiny model, driven by the official `openai` client."""
import re
import socket
import time

import httpx
import openai
import pytest

from models_app import services as models_services
from models_app.models import Deployment, ModelVersion
from serving.models import RateLimit, RequestAudit, ServingSettings


def client(live_asgi, key, **kwargs):
    return openai.OpenAI(base_url=f"{live_asgi}/v1", api_key=key, max_retries=0, timeout=30, **kwargs)


def test_openai_client_non_streaming_streaming_and_n(live_asgi, serving_setup):
    api = client(live_asgi, serving_setup["token"])
    slug = serving_setup["project"].slug
    assert slug in [m.id for m in api.models.list().data]

    answer = api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Say hello"}],
                                         max_tokens=6, temperature=0.7, top_p=0.9, seed=3)
    assert answer.model == slug
    assert len(answer.choices) == 1 and answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage.completion_tokens > 0 and answer.usage.prompt_tokens > 0

    pieces, finishes = [], []
    chunks = api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Count"}], max_tokens=6,
                                         stream=True, stream_options={"include_usage": True})
    usage = None
    for chunk in chunks:
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            if c.finish_reason:
                finishes.append(c.finish_reason)
        usage = chunk.usage or usage
    assert "".join(pieces) and finishes == ["length"]
    assert usage.completion_tokens == 6

    many = api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, n=3,
                                       temperature=1.0, seed=1)
    assert sorted(c.index for c in many.choices) == [0, 1, 2]
    assert all(c.message.content for c in many.choices)

    # Streamed n > 1: every index gets text and a finish.
    seen = {}
    for chunk in api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Hi"}], max_tokens=3,
                                             n=2, stream=True):
        for c in chunk.choices:
            seen.setdefault(c.index, []).append(c.finish_reason)
    assert sorted(seen) == [0, 1] and all("length" in v for v in seen.values())

    audits = list(RequestAudit.objects.filter(user=serving_setup["user"], status_code=200))
    assert len(audits) == 4
    assert audits[-1].model_version == serving_setup["version"] and audits[-1].decoding["seed"] == 3
    assert audits[-1].completion_tokens > 0 and audits[-1].latency_ms > 0


def test_deploy_changes_what_is_served_without_restart(live_asgi, serving_setup, tiny_model_dir):
    project = serving_setup["project"]
    other = ModelVersion.objects.create(kind="policy", name="tiny-policy-2", base_model="tiny",
                                        artifact_dir=str(tiny_model_dir))
    models_services.deploy(project, other)
    api = client(live_asgi, serving_setup["token"])
    api.chat.completions.create(model=project.slug, messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert RequestAudit.objects.latest("id").model_version == other
    models_services.rollback(project)
    api.chat.completions.create(model=project.slug, messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert RequestAudit.objects.latest("id").model_version == serving_setup["version"]


def test_errors_in_openai_shape(live_asgi, serving_setup, settings):
    settings.RANKLOOP_SERVING_MAX_N = 2
    url, key = f"{live_asgi}/v1/chat/completions", serving_setup["token"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    slug = serving_setup["project"].slug

    bad = httpx.post(url, content=b"{not json", headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    assert set(bad.json()["error"]) >= {"message", "type", "code"}

    refused = httpx.post(url, json={"model": "x", "messages": []}, headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401

    api = client(live_asgi, key)
    with pytest.raises(openai.NotFoundError) as unknown:
        api.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    assert unknown.value.body["code"] == "model_not_found"

    with pytest.raises(openai.BadRequestError) as too_many:
        api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Hi"}], n=3)
    assert "at most 2" in too_many.value.body["message"]

    with pytest.raises(openai.BadRequestError) as too_long:
        api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "word " * 600}], max_tokens=10)
    body = too_long.value.body
    assert body["code"] == "context_length_exceeded" and "tokens too many" in body["message"]

    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Hi"}], max_tokens=10**6)


def test_rate_limit_429_with_headers(live_asgi, serving_setup):
    RateLimit.objects.create(project=serving_setup["project"], requests_per_minute=2, tokens_per_day=100000)
    url = f"{live_asgi}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {serving_setup['token']}"}
    body = {"model": serving_setup["project"].slug, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    first = httpx.post(url, json=body, headers=headers, timeout=30)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert httpx.post(url, json=body, headers=headers, timeout=30).status_code == 200
    refused = httpx.post(url, json=body, headers=headers, timeout=30)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_tokens_per_day_limit(live_asgi, serving_setup):
    RateLimit.objects.create(project=serving_setup["project"], requests_per_minute=100, tokens_per_day=20)
    api = client(live_asgi, serving_setup["token"])
    slug = serving_setup["project"].slug
    api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Hello there"}], max_tokens=8)
    with pytest.raises(openai.RateLimitError) as refused:
        api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    assert "tokens per day" in refused.value.body["message"]


def test_moderation_refuses_input_and_cuts_output(live_asgi, serving_setup):
    project = serving_setup["project"]
    project.moderation_blocklist = ["forbidden"]
    project.save()
    api = client(live_asgi, serving_setup["token"])
    with pytest.raises(openai.BadRequestError) as refused:
        api.chat.completions.create(model=project.slug, messages=[{"role": "user", "content": "a forbidden thing"}])
    assert refused.value.body["code"] == "content_filter"
    assert "blocklisted: forbidden" in refused.value.body["message"]
    assert RequestAudit.objects.latest("id").moderation["input"]["flagged"] is True

    # Output: learn what the (deterministic, greedy) tiny model says, then flag its third word.
    first = api.chat.completions.create(model=project.slug, messages=[{"role": "user", "content": "Go"}],
                                        max_tokens=12, temperature=0)
    words = first.choices[0].message.content.split()
    # A word the answer says after some text, and that the user's message does not contain.
    target = next((w for i, w in enumerate(words) if i >= 1 and w.isalpha() and w not in words[:i]
                   and not re.search(rf"(?<!\w){w}(?!\w)", "Go", re.IGNORECASE)), None)
    assert target, words
    project.moderation_blocklist = [target]
    project.save()
    pieces, finish = [], None
    for chunk in api.chat.completions.create(model=project.slug, messages=[{"role": "user", "content": "Go"}],
                                             max_tokens=12, temperature=0, stream=True):
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            finish = c.finish_reason or finish
    assert finish == "content_filter"
    assert "".join(pieces).split() == words[:words.index(target)]

    ServingSettings.objects.create(project=project, flagged_output="warn")
    warned = api.chat.completions.create(model=project.slug, messages=[{"role": "user", "content": "Go"}],
                                         max_tokens=12, temperature=0)
    assert warned.choices[0].message.content == first.choices[0].message.content
    assert warned.choices[0].model_extra["moderation"]["flagged"] is True


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_upstream_down_or_hanging_gives_503_quickly(live_asgi, serving_setup, hanging_upstream, settings):
    settings.RANKLOOP_UPSTREAM_READ_TIMEOUT_S = 1.5
    settings.RANKLOOP_UPSTREAM_CONNECT_TIMEOUT_S = 1.5
    deployment = Deployment.objects.get(project=serving_setup["project"], is_active=True)
    api = client(live_asgi, serving_setup["token"])
    slug = serving_setup["project"].slug
    for upstream, words in ((f"http://127.0.0.1:{_free_port()}/v1", "not reachable"),
                            (hanging_upstream, "stopped answering")):
        Deployment.objects.filter(pk=deployment.pk).update(upstream=upstream)
        for stream in (False, True):
            started = time.monotonic()
            with pytest.raises(openai.InternalServerError) as down:
                result = api.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Hi"}],
                                                     max_tokens=2, stream=stream)
                list(result)
            assert time.monotonic() - started < 5
            assert down.value.status_code == 503 and words in down.value.body["message"]
    assert RequestAudit.objects.filter(status_code=503).count() == 4


def test_disconnect_mid_stream_is_audited_incomplete(live_asgi, serving_setup):
    """The client goes away after the first pieces: rankloop closes the upstream request and
    audits the request as cut short (499) with fewer tokens than asked."""
    url = f"{live_asgi}/v1/chat/completions"
    body = {"model": serving_setup["project"].slug, "messages": [{"role": "user", "content": "Go on"}],
            "max_tokens": 400, "stream": True, "temperature": 1.0}
    with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {serving_setup['token']}"},
                      timeout=30) as response:
        assert response.status_code == 200
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data:") and "content" in line:
                seen += 1
            if seen >= 3:
                break
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not RequestAudit.objects.filter(status_code=499).exists():
        time.sleep(0.1)
    audit = RequestAudit.objects.get(status_code=499)
    assert 0 < audit.completion_tokens < 400
    assert audit.finish_reasons == ["incomplete"]
