"""The OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models, authenticated with
rankloop's API tokens as `Authorization: Bearer <token>`. Django async views: a stream waits
on the upstream in the event loop and holds no thread (serve them with rankloop.asgi)."""
from __future__ import annotations

import json
import time
import uuid

from asgiref.sync import sync_to_async
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from rankloop.api_common import FailedAuthenticationThrottle, TokenAuthentication

from . import engine, services
from .services import ServingError
from .upstream import UpstreamUnavailable


def error_response(error: ServingError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _authenticate(request):
    """(user, token) from `Authorization: Bearer <key>` (or `Token <key>`), or ServingError 401.
    Failed attempts count against the address's anonymous rate, as in the REST API."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    error = None
    if scheme.lower() not in ("bearer", "token") or not key.strip():
        error = ServingError(401, "Send your API token as `Authorization: Bearer <token>` (tokens: /accounts/tokens/).",
                             type="authentication_error", code="invalid_api_key")
    else:
        try:
            return TokenAuthentication().authenticate_credentials(key.strip())
        except exceptions.AuthenticationFailed:
            error = ServingError(401, "Incorrect API token.", type="authentication_error", code="invalid_api_key")
    throttle = FailedAuthenticationThrottle()
    if not throttle.allow_request(request, None):
        retry = max(1, int(throttle.wait() or 1))
        raise ServingError(429, f"Too many failed authentications from this address; try again in {retry} s.",
                           type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": str(retry)})
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
    except UpstreamUnavailable as error:
        yield _sse({"error": {"message": str(error), "type": "server_error", "code": "upstream_unavailable"}})
        return
    if plan.include_usage:
        yield _sse(_chunk(cid, created, model, [], usage=_usage(plan, outcome)))
    yield b"data: [DONE]\n\n"


@csrf_exempt
async def chat_completions(request):
    if request.method != "POST":
        return error_response(ServingError(405, "Use POST.", code="method_not_allowed"))
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        return error_response(ServingError(400, f"The request body is not valid JSON: {error}.", code="invalid_json"))
    try:
        plan = await sync_to_async(_prepare_api)(request, body)
    except ServingError as error:
        return error_response(error)
    try:
        streams = await engine.open_upstream(plan)
    except UpstreamUnavailable as error:
        return error_response(ServingError(503, str(error), type="server_error", code="upstream_unavailable",
                                           headers=plan.limit.headers()))
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
            return error_response(ServingError(503, str(error), type="server_error", code="upstream_unavailable",
                                               headers=plan.limit.headers()))
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


async def models(request):
    try:
        rows = await sync_to_async(_models)(request)
    except ServingError as error:
        return error_response(error)
    return JsonResponse({"object": "list", "data": rows})


async def not_found(request, rest=""):
    return error_response(ServingError(404, f"No such endpoint: {request.path}.", code="not_found"))


def health(request):
    return HttpResponse("ok", content_type="text/plain")
