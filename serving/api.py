"""The OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models, authenticated with
rankloop's API tokens as `Authorization: Bearer <token>`. Django async views: a stream waits
on the upstream in the event loop and holds no thread (serve them with rankloop.asgi). Every
refusal is a RankloopError, answered in OpenAI's error shape by `openai_error`."""
from __future__ import annotations

import functools
import json
import time
import uuid

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from rankloop.api_common import FailedAuthenticationThrottle, TokenAuthentication
from rankloop.errors import RankloopError

from . import engine, services
from .database import database_sync_to_async
from .services import ServingError
from .upstream import UpstreamUnavailable


def openai_error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error_body(error: RankloopError) -> dict:
    """A RankloopError in OpenAI's error shape: {"error": {"message", "type", "code", "param"}}."""
    return {"error": {"message": error.message, "type": openai_error_type(error.status), "code": error.code,
                      "param": getattr(error, "param", None)}}


def openai_error(error: RankloopError, headers=None) -> JsonResponse:
    """The answer to a refused /v1/ request: its status, OpenAI's error body, and the headers the
    error carries (a rate limit's Retry-After) and `headers` (the request's rate-limit state)."""
    response = JsonResponse(openai_error_body(error), status=error.status)
    for name, value in {**(headers or {}), **getattr(error, "headers", {})}.items():
        response[name] = value
    return response


def answers_openai_errors(view):
    """A RankloopError the view raises becomes its answer in OpenAI's shape (the /v1/ views are
    called by OpenAI clients, not browsers: rankloop.middleware's pages are not for them)."""

    @functools.wraps(view)
    async def wrapped(request, *args, **kwargs):
        try:
            return await view(request, *args, **kwargs)
        except RankloopError as error:
            return openai_error(error)

    return wrapped


def _authenticate(request):
    """(user, token) from `Authorization: Bearer <key>` (or `Token <key>`), or ServingError 401.
    Failed attempts count against the address's anonymous rate, as in the REST API."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    error = None
    if scheme.lower() not in ("bearer", "token") or not key.strip():
        error = ServingError("Send your API token as `Authorization: Bearer <token>` (tokens: /accounts/tokens/).",
                             status=401, code="invalid_api_key")
    else:
        try:
            return TokenAuthentication().authenticate_credentials(key.strip())
        except exceptions.AuthenticationFailed:
            error = ServingError("Incorrect API token.", status=401, code="invalid_api_key")
    throttle = FailedAuthenticationThrottle()
    if not throttle.allow_request(request, None):
        retry = max(1, int(throttle.wait() or 1))
        raise ServingError(f"Too many failed authentications from this address; try again in {retry} s.",
                           status=429, code="rate_limit_exceeded", headers={"Retry-After": str(retry)})
    raise error


def _prepare_api(request, body):
    user, token = _authenticate(request)
    return services.prepare(user, body, channel="api", token=token)


def _sse(data) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunk(cid, created, model, choices, usage=None):
    chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices}
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _usage(plan, outcome):
    prompt = max([c.prompt_tokens for c in outcome.choices] + [0]) or plan.prompt_tokens
    completion = sum(c.completion_tokens or 0 for c in outcome.choices)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _warning(outcome, index):
    verdict = outcome.output_verdicts.get(index)
    if verdict and verdict.get("flagged"):
        return {"flagged": True, "reasons": services.reasons(verdict)}
    return None


async def _stream_body(plan, streams, cid, created):
    outcome = services.Outcome(choices=[])
    model = plan.target.name
    for i in range(plan.n):
        yield _sse(_chunk(cid, created, model, [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                  "finish_reason": None}]))
    try:
        async for event in engine.run(plan, streams, outcome):
            if event.kind == "delta":
                yield _sse(_chunk(cid, created, model, [{"index": event.index, "delta": {"content": event.text},
                                                          "finish_reason": None}]))
            else:
                choice = {"index": event.index, "delta": {}, "finish_reason": event.finish_reason}
                warning = _warning(outcome, event.index)
                if warning:
                    choice["moderation"] = warning
                yield _sse(_chunk(cid, created, model, [choice]))
    except UpstreamUnavailable as error:  # the answer has begun: the error is its last event
        yield _sse(openai_error_body(error))
        return
    if plan.include_usage:
        yield _sse(_chunk(cid, created, model, [], usage=_usage(plan, outcome)))
    yield b"data: [DONE]\n\n"


@csrf_exempt
@answers_openai_errors
async def chat_completions(request):
    if request.method != "POST":
        raise ServingError("Use POST.", status=405, code="method_not_allowed")
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        raise ServingError(f"The request body is not valid JSON: {error}.", code="invalid_json") from None
    plan = await database_sync_to_async(_prepare_api)(request, body)
    try:
        streams = await engine.open_upstream(plan)
    except UpstreamUnavailable as error:
        return openai_error(error, headers=plan.limit.headers())
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if plan.stream:
        response = StreamingHttpResponse(_stream_body(plan, streams, cid, created), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each chunk on at once
    else:
        outcome = services.Outcome(choices=[])
        try:
            async for _event in engine.run(plan, streams, outcome):
                pass
        except UpstreamUnavailable as error:
            return openai_error(error, headers=plan.limit.headers())
        choices = []
        for c in outcome.choices:
            choice = {"index": c.index, "message": {"role": "assistant", "content": c.text},
                      "finish_reason": c.finish_reason or "stop", "logprobs": None}
            warning = _warning(outcome, c.index)
            if warning:
                choice["moderation"] = warning
            choices.append(choice)
        response = JsonResponse({"id": cid, "object": "chat.completion", "created": created, "model": plan.target.name,
                                 "choices": choices, "usage": _usage(plan, outcome)})
    for name, value in plan.limit.headers().items():
        response[name] = value
    return response


def _models(request):
    user, _token = _authenticate(request)
    return services.models_for(user)


@answers_openai_errors
async def models(request):
    rows = await database_sync_to_async(_models)(request)
    return JsonResponse({"object": "list", "data": rows})


@answers_openai_errors
async def not_found(request, rest=""):
    raise ServingError(f"No such endpoint: {request.path}.", status=404, code="not_found")


def health(request):
    return HttpResponse("ok", content_type="text/plain")
