"""Every state change of the serving app, and the checks before a request goes upstream. All
synchronous (the ORM); the async views call them on the serving pool (database.py)."""
from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from labeling import moderation
from labeling.actions.annotations import record_comparison
from labeling.actions.prompts import add_prompt_once
from labeling.models import Candidate, Membership, Project
from labeling.submission import text_problem
from models_app import loading
from models_app.models import Deployment, ModelVersion
from rankloop.errors import RankloopError

from . import limits
from .models import (
    ChatComparison,
    ChatProfile,
    Conversation,
    Feedback,
    Message,
    RateLimit,
    RequestAudit,
    ServingSettings,
)

log = logging.getLogger("rankloop.serving")

MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 100_000


class ServingError(RankloopError):
    """A refusal of a chat request. Beside the message, status and code: the request field it
    is about (`param`, in OpenAI's error shape) and headers to answer with (a rate limit's)."""

    status = 400
    code = "invalid_request"

    def __init__(self, message, errors=None, *, status=None, code=None, param=None, headers=None):
        super().__init__(message, errors, status=status, code=code)
        self.param = param
        self.headers = headers or {}


# --- resolving a model name ---------------------------------------------------------------


@dataclass
class Target:
    """What a request's `model` names: the policy version, its project and its upstream."""

    name: str
    version: ModelVersion
    project: Project | None
    upstream_url: str
    upstream_model: str


def upstream_url(upstream: str) -> str:
    upstream = (upstream or "embedded").strip()
    if upstream == "embedded":
        return settings.RANKLOOP_EMBEDDED_UPSTREAM_URL
    return upstream


def _target_of(name, version, project, deployment) -> Target:
    url = upstream_url(deployment.upstream if deployment else "embedded")
    upstream_model = (deployment.upstream_model if deployment else "") or str(loading.artifact_path(version))
    return Target(name, version, project, url, upstream_model)


def resolve_model(name, user) -> Target:
    """The project (its deployed policy, resolved now: a deploy or rollback is served at the
    next request) or the model version that `name` names, if the user may use it. One query
    for a project's name: its deployment, policy, serving settings and the user's membership
    (each query is about 0.5 ms of the time to first token)."""
    if not isinstance(name, str) or not name.strip():
        raise ServingError("`model` is required: a project's slug or a model version's name.", param="model")
    name = name.strip()
    deployment = (
        Deployment.objects.filter(project__slug=name, is_active=True)
        .select_related("model_version", "project", "project__serving_settings")
        .annotate(user_is_member=Exists(Membership.objects.filter(project=OuterRef("project"), user=user.pk,
                                                                  is_active=True)))
        .first()
    )
    if deployment is not None and (user.is_staff or deployment.user_is_member):
        deployment.project.remember_member(user)
        return _target_of(name, deployment.model_version, deployment.project, deployment)
    version = ModelVersion.objects.filter(name=name, kind=ModelVersion.Kind.POLICY).select_related("project").first()
    if version is not None and (user.is_staff or (version.project is not None and version.project.has_member(user))):
        latest = Deployment.objects.filter(model_version=version).order_by("-is_active", "-deployed_at").first()
        return _target_of(name, version, version.project or (latest.project if latest else None), latest)
    if Project.objects.filter(slug=name).exists() and deployment is None:
        raise ServingError(f"Project {name!r} has no deployed policy yet.", status=404, code="model_not_found",
                           param="model")
    raise ServingError(f"The model {name!r} does not exist or you do not have access to it.", status=404,
                       code="model_not_found", param="model")


def models_for(user) -> list[dict]:
    """What GET /v1/models lists: the projects the user may chat with that have a deployed
    policy, and (for staff) every ready policy version."""
    projects = Project.objects.filter(deployments__is_active=True, is_archived=False)
    if not user.is_staff:
        projects = projects.filter(memberships__user=user, memberships__is_active=True)
    rows = [{"id": p.slug, "object": "model", "created": int(p.created_at.timestamp()), "owned_by": "rankloop"}
            for p in projects.distinct()]
    if user.is_staff:
        for v in ModelVersion.objects.filter(kind=ModelVersion.Kind.POLICY, status=ModelVersion.Status.READY):
            rows.append({"id": v.name, "object": "model", "created": int(v.created_at.timestamp()),
                         "owned_by": "rankloop"})
    return rows


# --- tokenizer: counting a prompt's tokens (the web process loads tokenizers, never models) --

_tokenizers: dict = {}
_tokenizers_lock = threading.Lock()


def _tokenizer(version):
    path = str(loading.tokenizer_path(version))
    found = _tokenizers.get(path)
    if found is None:
        with _tokenizers_lock:
            found = _tokenizers.get(path)
            if found is None:
                tok = loading.load_tokenizer(path)
                found = (tok, _context_length(tok, loading.artifact_path(version)))
                _tokenizers[path] = found
    return found


def _context_length(tokenizer, directory) -> int:
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    candidates = [config.get("max_position_embeddings")]
    if tokenizer.model_max_length and tokenizer.model_max_length < 10**7:
        candidates.append(tokenizer.model_max_length)
    known = [c for c in candidates if isinstance(c, int) and c > 0]
    return min(known) if known else 2048


def count_prompt_tokens(version, messages) -> tuple[int, int]:
    """(tokens of the templated messages, the model's context length)."""
    tokenizer, context = _tokenizer(version)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids), context


# --- checking a request -------------------------------------------------------------------


@dataclass
class Plan:
    """A checked request, ready to go upstream."""

    user: object
    channel: str
    target: Target
    messages: list
    decoding: dict
    n: int
    stream: bool
    include_usage: bool
    prompt_tokens: int
    limit: limits.LimitState
    flagged_output: str
    input_verdict: dict
    token_hint: str = ""
    message_id: int | None = None  # the chat message this request writes
    upstream_bodies: list = field(default_factory=list)


def _check_messages(messages):
    if not isinstance(messages, list) or not messages:
        raise ServingError("`messages` must be a non-empty list of {role, content} objects.", param="messages")
    if len(messages) > MAX_MESSAGES:
        raise ServingError(f"At most {MAX_MESSAGES} messages per request.", param="messages")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ServingError(f"messages[{i}] needs a role of system, user or assistant.", param="messages")
        content = m.get("content")
        if isinstance(content, list):  # [{"type": "text", "text": ...}]
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise ServingError(f"messages[{i}].content: only text parts are supported.", param="messages")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise ServingError(f"messages[{i}].content must be text.", param="messages")
        if len(content) > MAX_MESSAGE_CHARS:
            raise ServingError(f"messages[{i}] is longer than {MAX_MESSAGE_CHARS} characters.", param="messages")
        clean.append({"role": m["role"], "content": content})
    if not any(m["role"] == "user" for m in clean):
        raise ServingError("`messages` needs at least one user message.", param="messages")
    return clean


def _number(body, name, kind, low, high, default=None):
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ServingError(f"`{name}` must be {'an integer' if kind is int else 'a number'}.", param=name)
    if not (low <= value <= high):
        raise ServingError(f"`{name}` must be between {low} and {high}; got {value}.", param=name)
    return value


def serving_settings(project) -> ServingSettings:
    if project is None:
        return ServingSettings()
    try:
        return project.serving_settings  # read with the deployment (resolve_model), else one query
    except ServingSettings.DoesNotExist:
        return ServingSettings(project=project)


def rate_limit_for(user, project) -> tuple[int, int]:
    """(requests per minute, tokens per day): the most specific RateLimit row that applies (one
    query: the user's groups are a subquery)."""
    group_ids = user.groups.values("id")
    rows = list(RateLimit.objects.filter(
        Q(project=project) | Q(project__isnull=True), Q(group_id__in=group_ids) | Q(group__isnull=True),
    )) if project is not None else list(RateLimit.objects.filter(project__isnull=True, group_id__in=group_ids))
    if not rows:
        return settings.RANKLOOP_SERVING_REQUESTS_PER_MINUTE, settings.RANKLOOP_SERVING_TOKENS_PER_DAY
    best = max(rows, key=lambda r: (r.project_id is not None, r.group_id is not None, r.requests_per_minute))
    return best.requests_per_minute, best.tokens_per_day


def _verdict(project, text) -> dict:
    if project is None:
        return {"flagged": False, "filters": {}}
    return moderation.moderate(project, text)


def reasons(verdict) -> list[str]:
    return [r for f in (verdict.get("filters") or {}).values() if f.get("flagged") for r in f.get("reasons", [])]


def prepare(user, body, *, channel="api", token=None, message_id=None) -> Plan:
    """Check one chat completion request (the OpenAI body) for `user`: the model, the messages,
    the decoding settings and the configured limits, the moderation of the user's message, the
    context length (counted with the version's tokenizer) and the rate limits (which count it).
    ServingError, audited, when refused."""
    target = None
    try:
        if not isinstance(body, dict):
            raise ServingError("The request body must be a JSON object.")
        target = resolve_model(body.get("model"), user)
        return _prepare(user, body, target, channel=channel, token=token, message_id=message_id)
    except ServingError as error:
        audit(user=user, token=token, channel=channel, body=body if isinstance(body, dict) else {}, target=target,
              status_code=error.status, error=error.message,
              moderation_verdict=getattr(error, "verdict", None))
        raise


def _prepare(user, body, target, *, channel, token, message_id) -> Plan:
    messages = _check_messages(body.get("messages"))
    project = target.project
    serving = serving_settings(project)
    max_n = serving.max_n or settings.RANKLOOP_SERVING_MAX_N
    max_tokens_limit = serving.max_tokens or settings.RANKLOOP_SERVING_MAX_TOKENS
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ServingError("`n` must be a positive integer.", param="n")
    if n > max_n:
        raise ServingError(f"`n` is {n}; at most {max_n} answers per request here.", param="n",
                           code="n_over_limit")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ServingError("`max_tokens` must be a positive integer.", param="max_tokens")
        if max_tokens > max_tokens_limit:
            raise ServingError(f"`max_tokens` is {max_tokens}; at most {max_tokens_limit} here.",
                               param="max_tokens", code="max_tokens_over_limit")
    temperature = _number(body, "temperature", float, 0, 2)
    top_p = _number(body, "top_p", float, 0, 1)
    seed = _number(body, "seed", int, -(2**63), 2**63 - 1)
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
            raise ServingError("`stop` must be a string or a list of up to 4 strings.", param="stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ServingError("`stream` must be true or false.", param="stream")
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))

    last_user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    input_verdict = _verdict(project, last_user)
    if input_verdict["flagged"]:
        error = ServingError("Your message was refused by moderation: " + "; ".join(reasons(input_verdict)) + ".",
                             code="content_filter", param="messages")
        error.verdict = {"input": input_verdict}
        raise error

    try:
        prompt_tokens, context = count_prompt_tokens(target.version, messages)
    except Exception as error:  # a tokenizer that does not load is the deployment's problem, said plainly
        log.warning("Tokenizer of %s failed: %s", target.version, error)
        raise ServingError(f"The tokenizer of {target.version} could not be loaded.", status=503,
                           code="tokenizer_unavailable") from None
    room = context - prompt_tokens
    if max_tokens is None:
        max_tokens = min(settings.RANKLOOP_SERVING_DEFAULT_MAX_TOKENS, max_tokens_limit, room)
        if max_tokens < 1:
            raise ServingError(
                f"This model's maximum context length is {context} tokens, but your messages are "
                f"{prompt_tokens} tokens: {prompt_tokens - context + 1} too many to leave room for one token "
                "of answer. Shorten the messages.", code="context_length_exceeded", param="messages")
    elif prompt_tokens + max_tokens > context:
        raise ServingError(
            f"This model's maximum context length is {context} tokens. Your messages are {prompt_tokens} tokens "
            f"and max_tokens asks for {max_tokens}: {prompt_tokens + max_tokens - context} tokens too many. "
            "Shorten the messages or lower max_tokens.", code="context_length_exceeded", param="messages")

    rpm, tpd = rate_limit_for(user, project)
    scope = f"p{project.pk if project else 0}"
    identities = [f"{scope}:u{user.pk}"]
    if token is not None:
        identities.append(f"{scope}:t{limits.token_digest(token.key)}")
    state = limits.check(identities, requests_per_minute=rpm, tokens_per_day=tpd)
    if state.refused:
        what = (f"{rpm} requests per minute" if state.refused == "requests" else f"{tpd} tokens per day")
        raise ServingError(f"Rate limit reached: {what} for {project or 'this model'}. "
                           f"Try again in {max(1, math.ceil(state.retry_after_s))} s.", status=429,
                           code="rate_limit_exceeded", headers=state.headers())

    decoding = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed, "stop": stop}
    decoding = {k: v for k, v in decoding.items() if v is not None}
    plan = Plan(user=user, channel=channel, target=target, messages=messages, decoding=decoding, n=n, stream=stream,
                include_usage=include_usage, prompt_tokens=prompt_tokens, limit=state,
                flagged_output=serving.flagged_output, input_verdict=input_verdict,
                token_hint=token.key[:6] if token is not None else "", message_id=message_id)
    for i in range(n):
        upstream_body = {"model": target.upstream_model, "messages": messages, **decoding}
        if seed is not None and n > 1:
            upstream_body["seed"] = seed + i  # n answers from one seed would be n copies
        plan.upstream_bodies.append(upstream_body)
    return plan


# --- moderation of the answer as it streams -------------------------------------------------


def safe_prefix(project, text) -> str:
    """The longest prefix of `text`, cut at a word boundary, that the filters pass (a prefix
    of a flagged text is flagged from some length on, so a binary search finds it), less a
    last word that begins a blocklisted phrase ("bad" of "bad thing")."""
    cuts = [i for i, ch in enumerate(text) if ch.isspace()] + [len(text)]
    lo, hi, best = 0, len(cuts) - 1, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if _verdict(project, text[:cuts[mid]])["flagged"]:
            hi = mid - 1
        else:
            best, lo = cuts[mid], mid + 1
    safe = text[:best].rstrip()
    return safe[:len(safe) - moderation.unfinished(project, safe)].rstrip()


def check_output(plan: Plan, text: str) -> dict:
    return _verdict(plan.target.project, text)


def unfinished_output(plan: Plan, text: str) -> int:
    """How many characters at the end of a streamed answer to hold back until the next piece
    (the start of a blocklisted word the filters cannot judge yet)."""
    project = plan.target.project
    return 0 if project is None else moderation.unfinished(project, text)


# --- after a request ----------------------------------------------------------------------


def audit(*, user, channel, body, status_code, token=None, target=None, plan=None, error="", finish_reasons=(),
          prompt_tokens=0, completion_tokens=0, ttft_ms=None, latency_ms=None, moderation_verdict=None):
    decoding = plan.decoding if plan else {k: body.get(k)
                                           for k in ("temperature", "top_p", "max_tokens", "seed", "stop")
                                           if body.get(k) is not None}
    try:
        RequestAudit.objects.create(
            user=user if getattr(user, "pk", None) else None,
            token_hint=(plan.token_hint if plan else (token.key[:6] if token is not None else "")),
            channel=channel, model_requested=str(body.get("model") or "")[:300],
            project=target.project if target else None, model_version=target.version if target else None,
            upstream=target.upstream_url[:500] if target else "", decoding=_jsonable(decoding),
            stream=bool(body.get("stream")) if isinstance(body.get("stream"), bool) else False,
            n=body.get("n") if isinstance(body.get("n"), int) and 0 < body.get("n") < 30000 else 1,
            status_code=status_code, error=str(error)[:500], finish_reasons=list(finish_reasons),
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, ttft_ms=ttft_ms, latency_ms=latency_ms,
            moderation=moderation_verdict or {},
        )
    except Exception:  # the audit must never turn an answer into a 500
        log.exception("Could not write the request audit")


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return {}


@dataclass
class Outcome:
    choices: list  # upstream.Choice
    status_code: int = 200
    error: str = ""
    incomplete: bool = False
    output_verdicts: dict = field(default_factory=dict)  # index -> verdict
    ttft_ms: float | None = None
    latency_ms: float | None = None


def finish(plan: Plan, outcome: Outcome) -> None:
    """Count the tokens against the limits, audit the request and, for the chat, store the
    answer (incomplete when the client went away or the upstream failed mid-stream)."""
    prompt_tokens = max([c.prompt_tokens for c in outcome.choices] + [0]) or plan.prompt_tokens
    for c in outcome.choices:  # a stopped or cut answer never got the upstream's usage
        if not c.completion_tokens and c.text:
            try:
                c.completion_tokens = len(_tokenizer(plan.target.version)[0].encode(c.text, add_special_tokens=False))
            except Exception:
                c.completion_tokens = 0
    completion_tokens = sum(c.completion_tokens or 0 for c in outcome.choices)
    try:
        plan.limit.add_tokens(prompt_tokens + completion_tokens)
    except Exception:
        log.exception("Could not count tokens against the limits")
    flagged = {i: v for i, v in outcome.output_verdicts.items() if v.get("flagged")}
    verdict = {"input": plan.input_verdict, "output": next(iter(flagged.values()), {"flagged": False})}
    reasons_done = [c.finish_reason or ("incomplete" if outcome.incomplete else "") for c in outcome.choices]
    audit(user=plan.user, channel=plan.channel, body={"model": plan.target.name, "stream": plan.stream, "n": plan.n},
          plan=plan, target=plan.target, status_code=outcome.status_code, error=outcome.error,
          finish_reasons=reasons_done, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
          ttft_ms=outcome.ttft_ms, latency_ms=outcome.latency_ms, moderation_verdict=verdict)
    if plan.message_id is not None and outcome.choices:
        choice = outcome.choices[0]
        if outcome.incomplete or outcome.error:
            status = Message.Status.INCOMPLETE if outcome.incomplete else Message.Status.ERROR
        elif choice.finish_reason == "content_filter":
            status = Message.Status.CUT
        else:
            status = Message.Status.COMPLETE
        Message.objects.filter(pk=plan.message_id).update(
            content=choice.text, status=status, error=outcome.error[:500], finish_reason=choice.finish_reason or "",
            prompt_tokens=prompt_tokens, completion_tokens=choice.completion_tokens or None,
            moderation=outcome.output_verdicts.get(0, {}), is_flagged=bool(flagged.get(0)),
            latency_ms=outcome.latency_ms, model_version=plan.target.version,
            decoding={**plan.decoding, "model": plan.target.name},
        )


# --- the chat -----------------------------------------------------------------------------


def chat_projects(user):
    """Projects the user may chat with: theirs (all for staff) with a deployed policy."""
    projects = Project.objects.filter(deployments__is_active=True, is_archived=False)
    if not user.is_staff:
        projects = projects.filter(memberships__user=user, memberships__is_active=True)
    return projects.distinct().order_by("name")


def is_opted_out(user) -> bool:
    return ChatProfile.objects.filter(user=user, opted_out=True).exists()


def set_opt_out(user, opted_out: bool) -> ChatProfile:
    """Opting out also marks every conversation the user has: none of them leaves the chat.
    Opting back in applies to new conversations only."""
    with transaction.atomic():
        profile, _ = ChatProfile.objects.update_or_create(user=user, defaults={"opted_out": bool(opted_out)})
        if opted_out:
            Conversation.objects.filter(user=user).update(opted_out=True)
    return profile


def start_conversation(user, project) -> Conversation:
    if not chat_projects(user).filter(pk=project.pk).exists():
        raise ServingError(f"You cannot chat with {project}.", status=403, code="not_allowed")
    return Conversation.objects.create(user=user, project=project, opted_out=is_opted_out(user))


def _visible(conversation):
    return list(conversation.messages.filter(hidden=False).order_by("position", "id"))


def _check_text(text):
    text = (text or "").strip()
    if not text:
        raise ServingError("Type a message first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ServingError(f"A message has at most {MAX_MESSAGE_CHARS} characters.")
    problem = text_problem(text)
    if problem:
        raise ServingError(f"The message {problem}.")
    return text


def send_message(conversation, text) -> Message:
    """Add the user's message and the (pending) answer the stream will write; returns the answer."""
    text = _check_text(text)
    with transaction.atomic():
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        visible = _visible(conversation)
        if visible and not visible[-1].is_finished:
            raise ServingError("Wait for the answer (or stop it) before sending another message.", status=409,
                               code="conflict")
        position = (visible[-1].position + 1) if visible else 0
        Message.objects.create(conversation=conversation, position=position, role=Message.Role.USER, content=text)
        answer = Message.objects.create(conversation=conversation, position=position + 1,
                                        role=Message.Role.ASSISTANT, status=Message.Status.PENDING)
        if not conversation.title:
            conversation.title = text[:80]
        conversation.save(update_fields=["title", "updated_at"])
    return answer


def regenerate(message) -> Message:
    """A new answer at the same position as `message` (the last answer); the old one is hidden
    but kept, and the page asks which is better."""
    if message.role != Message.Role.ASSISTANT or message.hidden:
        raise ServingError("Only the current answer can be regenerated.")
    with transaction.atomic():
        Conversation.objects.select_for_update().filter(pk=message.conversation_id).first()
        visible = _visible(message.conversation)
        if visible[-1].pk != message.pk:
            raise ServingError("Only the last answer can be regenerated.", status=409, code="conflict")
        if not message.is_finished:
            raise ServingError("Stop the answer before regenerating it.", status=409, code="conflict")
        Message.objects.filter(pk=message.pk).update(hidden=True)
        return Message.objects.create(conversation=message.conversation, position=message.position,
                                      role=Message.Role.ASSISTANT, status=Message.Status.PENDING, replaces=message)


def edit_and_resend(message, text) -> Message:
    """Replace a user message with `text`: it and everything after it are hidden (kept), and the
    edited message gets a new answer."""
    if message.role != Message.Role.USER or message.hidden:
        raise ServingError("Only a visible message of yours can be edited.")
    text = _check_text(text)
    with transaction.atomic():
        conversation = message.conversation
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        later = conversation.messages.filter(hidden=False, position__gte=message.position)
        if later.filter(status__in=[Message.Status.PENDING, Message.Status.STREAMING]).exists():
            raise ServingError("Stop the answer before editing.", status=409, code="conflict")
        later.update(hidden=True)
        Message.objects.create(conversation=conversation, position=message.position, role=Message.Role.USER,
                               content=text)
        answer = Message.objects.create(conversation=conversation, position=message.position + 1,
                                        role=Message.Role.ASSISTANT, status=Message.Status.PENDING)
        conversation.save(update_fields=["updated_at"])
    return answer


def claim_for_streaming(message) -> list:
    """Mark the pending answer as streaming and return the messages before it (the request's
    history); ServingError if it is not waiting (e.g. a second tab already streams it)."""
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, status=Message.Status.PENDING, hidden=False).update(
            status=Message.Status.STREAMING)
        if not updated:
            raise ServingError("This answer is not waiting to be written.", status=409, code="conflict")
    history = [m for m in _visible(message.conversation) if m.position < message.position]
    return [{"role": m.role, "content": m.content} for m in history if m.role == Message.Role.USER or m.content]


def fail_message(message_id, status, error) -> None:
    Message.objects.filter(pk=message_id, status__in=[Message.Status.PENDING, Message.Status.STREAMING]).update(
        status=status, error=str(error)[:500])


def stop_message(message) -> Message:
    """A user's stop: the stream is closed by the browser (which stops the upstream); a message
    that never started streaming is marked incomplete here."""
    Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(status=Message.Status.INCOMPLETE)
    message.refresh_from_db()
    return message


def give_feedback(message, user, *, thumbs_up: bool, comment="") -> Feedback:
    if message.role != Message.Role.ASSISTANT:
        raise ServingError("Feedback is for answers.")
    comment = (comment or "").strip()[:5000]
    feedback, _ = Feedback.objects.update_or_create(
        message=message, defaults={"user": user, "thumbs_up": bool(thumbs_up), "comment": comment})
    return feedback


def compare(second, user, choice) -> ChatComparison:
    """The user's answer to "which is better?" between a regenerated answer and the one it
    replaced. Repeating it changes the vote (one per regenerated answer)."""
    if choice not in ChatComparison.Choice.values:
        raise ServingError("Choose first, second or tie.")
    if second.replaces_id is None:
        raise ServingError("This answer did not replace another.")
    comparison, _ = ChatComparison.objects.update_or_create(
        second=second, defaults={"conversation": second.conversation, "first_id": second.replaces_id,
                                 "choice": choice, "voter": user})
    return comparison


# --- feedback flows back into labeling ------------------------------------------------------

CHAT_SOURCE = "chat"


def _history_before(message):
    """The conversation as it stood when `message` was written (the visible messages then)."""
    rows = Message.objects.filter(conversation_id=message.conversation_id, position__lt=message.position)
    chosen = {}
    for m in rows.order_by("position", "id"):
        if m.role == Message.Role.USER or m.content:
            chosen[m.position] = m  # the latest at each position
    # Earlier positions: the version that led here is the latest one created before `message`.
    history = []
    for position in sorted(chosen):
        candidates = [m for m in rows if m.position == position and m.created_at <= message.created_at]
        pick = max(candidates, key=lambda m: m.id) if candidates else chosen[position]
        history.append({"role": pick.role, "content": pick.content})
    return history


def conversations_to_prompts(conversations, *, target_project=None) -> tuple[int, int]:
    """Each chosen conversation becomes one prompt (source "chat") of `target_project` (default:
    its own project): its visible messages up to the last user message. Opted-out conversations
    are skipped; a conversation already sent is not sent twice. Returns (added, skipped)."""
    added = skipped = 0
    for conversation in conversations:
        if conversation.opted_out or is_opted_out(conversation.user):
            skipped += 1
            continue
        project = target_project or conversation.project
        visible = [m for m in _visible(conversation) if m.content]
        while visible and visible[-1].role != Message.Role.USER:
            visible.pop()
        if not visible:
            skipped += 1
            continue
        with transaction.atomic():
            prompt, created = add_prompt_once(project, [{"role": m.role, "content": m.content} for m in visible],
                                              external_id=f"chat-conversation-{conversation.pk}",
                                              source=CHAT_SOURCE, tags=["chat"])
            Conversation.objects.filter(pk=conversation.pk).update(sent_to_prompt=prompt)
        added += int(created)
        skipped += int(not created)
    return added, skipped


def comparisons_to_pairs(comparisons) -> tuple[int, int]:
    """Each in-chat comparison becomes a preference pair of the conversation's project: a prompt
    (source "chat", the conversation before the answers), the two answers as candidates
    (source "chat", with the version and decoding that wrote them, moderated as every candidate
    is), a closed comparison task and the voter's annotation, aggregated like any other
    (labeling.actions.annotations.record_comparison). Opted-out conversations are skipped;
    a comparison already made into a pair is not made again. Returns (added, skipped)."""
    added = skipped = 0
    for comparison in comparisons:
        conversation = comparison.conversation
        if comparison.pair_id or conversation.opted_out or is_opted_out(conversation.user):
            skipped += 1
            continue
        first, second = comparison.first, comparison.second
        if not first.content or not second.content:
            skipped += 1
            continue
        project = conversation.project
        with transaction.atomic():
            prompt, _ = add_prompt_once(project, _history_before(second), source=CHAT_SOURCE, tags=["chat"],
                                        external_id=f"chat-comparison-{comparison.pk}")
            answers = [Candidate(prompt=prompt, text=m.content, model_version=m.model_version, decoding=m.decoding,
                                 external_source=CHAT_SOURCE, external_id=f"chat-message-{m.pk}",
                                 prompt_tokens=m.prompt_tokens, completion_tokens=m.completion_tokens,
                                 latency_ms=m.latency_ms)
                       for m in (first, second)]
            ranking = {"first": [[0], [1]], "second": [[1], [0]], "tie": [[0, 1]]}[comparison.choice]
            task = record_comparison(prompt, answers, comparison.voter, ranking, source=CHAT_SOURCE,
                                     pairwise_choice={"first": "a", "second": "b", "tie": "tie"}[comparison.choice],
                                     rationale="in-chat comparison", shown_at=comparison.created_at)
            ChatComparison.objects.filter(pk=comparison.pk).update(pair=task.pairs.first())
        added += 1
    return added, skipped
