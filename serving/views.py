"""The chat page (/chat/): conversations, streamed answers, stop, regenerate, edit and resend,
feedback and comparisons. Sync views for the page and its htmx fragments; the answer's event
stream is an async view (stream), which rankloop.asgi serves on the event loop."""
from __future__ import annotations

import asyncio
import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from labeling.models import Project
from labeling.templatetags.labeling_tags import render_markdown

from . import engine, services
from .database import database_sync_to_async
from .models import ChatComparison, Conversation, Message
from .services import ServingError
from .upstream import UpstreamUnavailable


def _conversation(request, pk):
    return get_object_or_404(Conversation.objects.select_related("project"), pk=pk, user=request.user)


def _message(request, pk):
    return get_object_or_404(Message.objects.select_related("conversation__project"), pk=pk,
                             conversation__user=request.user)


def _refusal(request, error, status=None):
    response = render(request, "serving/_error.html", {"message": error.message}, status=200)
    response["HX-Retarget"] = "#chat-errors"
    response["HX-Reswap"] = "innerHTML"
    return response


def _thread(conversation):
    """The visible messages, each answer with what the page offers on it."""
    messages = list(conversation.messages.filter(hidden=False).select_related("feedback").order_by("position", "id"))
    last_answer = next((m for m in reversed(messages) if m.role == Message.Role.ASSISTANT), None)
    compared = set(ChatComparison.objects.filter(second__in=[m for m in messages if m.replaces_id])
                   .values_list("second_id", flat=True))
    for m in messages:
        m.is_last = m is last_answer and m is messages[-1]
        m.asks_comparison = bool(m.replaces_id and m.is_finished and m.pk not in compared)
        m.html = render_markdown(m.content) if m.role == Message.Role.ASSISTANT else ""
    return messages


@login_required
def index(request, pk=None):
    conversations = Conversation.objects.filter(user=request.user).select_related("project")[:100]
    conversation = _conversation(request, pk) if pk is not None else None
    projects = list(services.chat_projects(request.user))
    return render(request, "serving/chat.html", {
        "conversations": conversations, "conversation": conversation, "projects": projects,
        "thread": _thread(conversation) if conversation else [],
        "opted_out": services.is_opted_out(request.user),
    })


@login_required
@require_POST
def new_conversation(request):
    project = Project.objects.filter(slug=request.POST.get("project", "")).first()
    if project is None:
        raise Http404("No such project.")
    conversation = services.start_conversation(request.user, project)  # refused: rankloop.middleware's 403 page
    text = (request.POST.get("text") or "").strip()
    if text:
        try:
            services.send_message(conversation, text)
        except ServingError:
            pass
    return redirect("serving:conversation", pk=conversation.pk)


@login_required
@require_POST
def send(request, pk):
    conversation = _conversation(request, pk)
    try:
        services.send_message(conversation, request.POST.get("text", ""))
    except ServingError as error:
        return _refusal(request, error)
    return _thread_response(request, conversation)


def _thread_response(request, conversation):
    return render(request, "serving/_thread.html", {"conversation": conversation, "thread": _thread(conversation)})


@login_required
def message_fragment(request, pk):
    message = _message(request, pk)
    return _thread_response(request, message.conversation)


@login_required
@require_POST
def stop(request, pk):
    message = _message(request, pk)
    services.stop_message(message)
    return HttpResponse(status=204)


@login_required
@require_POST
def regenerate(request, pk):
    message = _message(request, pk)
    try:
        services.regenerate(message)
    except ServingError as error:
        return _refusal(request, error)
    return _thread_response(request, message.conversation)


@login_required
@require_POST
def edit(request, pk):
    message = _message(request, pk)
    try:
        services.edit_and_resend(message, request.POST.get("text", ""))
    except ServingError as error:
        return _refusal(request, error)
    return _thread_response(request, message.conversation)


@login_required
@require_POST
def feedback(request, pk):
    message = _message(request, pk)
    value = request.POST.get("thumbs")
    if value not in ("up", "down"):
        return _refusal(request, ServingError("Choose thumbs up or down."))
    try:
        services.give_feedback(message, request.user, thumbs_up=value == "up", comment=request.POST.get("comment", ""))
    except ServingError as error:
        return _refusal(request, error)
    return _thread_response(request, message.conversation)


@login_required
@require_POST
def compare(request, pk):
    message = _message(request, pk)
    try:
        services.compare(message, request.user, request.POST.get("choice", ""))
    except ServingError as error:
        return _refusal(request, error)
    return _thread_response(request, message.conversation)


@login_required
@require_POST
def opt_out(request):
    services.set_opt_out(request.user, request.POST.get("opted_out") == "1")
    return redirect(request.POST.get("next") or "serving:index")


# --- the answer's event stream (async) ------------------------------------------------------


def _event(name, data) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _start(user, message_id):
    message = Message.objects.select_related("conversation__project").filter(
        pk=message_id, conversation__user=user).first()
    if message is None:
        raise ServingError("No such message.", status=404, code="not_found")
    history = services.claim_for_streaming(message)
    body = {"model": message.conversation.project.slug, "messages": history, "stream": True}
    try:
        return services.prepare(user, body, channel="chat", message_id=message.pk)
    except ServingError as error:
        status = Message.Status.REFUSED if error.status in (400, 429) else Message.Status.ERROR
        services.fail_message(message.pk, status, error.message)
        raise


async def stream(request, pk):
    """text/event-stream for one pending answer: `delta` events ({"t": text}), then `done`
    ({"status"}). Closing it (the page's Stop) stops the upstream; the answer is kept as
    incomplete."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse("Log in first.", status=401)

    async def events():
        try:
            plan = await database_sync_to_async(_start)(user, pk)
        except ServingError as error:
            yield _event("done", {"status": "refused", "message": error.message})
            return
        try:
            streams = await engine.open_upstream(plan)
        except UpstreamUnavailable as error:
            yield _event("done", {"status": "error", "message": str(error)})
            return
        except (asyncio.CancelledError, GeneratorExit):  # gone before the upstream answered
            await asyncio.shield(database_sync_to_async(services.fail_message)(pk, Message.Status.INCOMPLETE, ""))
            raise
        outcome = services.Outcome(choices=[])
        yield _event("start", {})
        try:
            async for event in engine.run(plan, streams, outcome):
                if event.kind == "delta":
                    yield _event("delta", {"t": event.text})
        except UpstreamUnavailable as error:
            yield _event("done", {"status": "error", "message": str(error)})
            return
        yield _event("done", {"status": "complete"})

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
