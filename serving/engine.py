"""One checked request (services.Plan) run against its upstream, with the answer moderated as it
streams. Async; the database is reached only through the serving pool (database.py) at the end (services.finish)."""
from __future__ import annotations

import asyncio
from contextlib import aclosing

from . import services, upstream
from .database import database_sync_to_async
from .upstream import Event, UpstreamUnavailable


async def open_upstream(plan):
    """Open the plan's upstream streams (n at once). UpstreamUnavailable, audited and with the
    chat message marked failed, when the upstream is down or silent."""
    try:
        return await upstream.open_streams(plan.target.upstream_url, plan.upstream_bodies)
    except UpstreamUnavailable as error:
        outcome = services.Outcome(choices=[], status_code=503, error=str(error))
        await database_sync_to_async(services.finish)(plan, outcome)
        if plan.message_id is not None:
            await database_sync_to_async(services.fail_message)(plan.message_id, "error", str(error))
        raise


async def run(plan, streams, outcome):
    """Events for the client: ("delta", index, text) and ("finish", index, reason), with the
    output moderation applied (a flagged answer is cut, finish_reason "content_filter", or
    passed with a warning in outcome.output_verdicts). Fills `outcome` as it goes; always ends
    with services.finish, also when the client goes away (then outcome.incomplete) or the
    upstream fails (then outcome.error and UpstreamUnavailable)."""
    timing = upstream.Timing()
    choices = {s.index: upstream.Choice(s.index) for s in streams}
    outcome.choices = [choices[i] for i in sorted(choices)]
    cut = set()
    by_index = {s.index: s for s in streams}
    held = {i: "" for i in choices}  # text received but not yet sent: it may be the start of a flagged word
    project = plan.target.project
    holds_back = project is not None and plan.flagged_output == "cut"

    def moderated(index, text, *, final):
        """The events for a choice whose text (sent + held + new) is now `text`."""
        choice = choices[index]
        hold = 0 if final or not holds_back else services.unfinished_output(plan, text)
        confirmed = text[:len(text) - hold]
        verdict = services.check_output(plan, confirmed) if project is not None else {"flagged": False}
        if verdict["flagged"]:
            outcome.output_verdicts[index] = verdict
            if plan.flagged_output == "cut":
                safe = services.safe_prefix(project, confirmed)
                piece = safe[len(choice.text):] if safe.startswith(choice.text) else ""
                if piece:
                    choice.text += piece
                    yield Event("delta", index, piece)
                choice.finish_reason = "content_filter"
                cut.add(index)
                held[index] = ""
                by_index[index].stop()
                yield Event("finish", index, finish_reason="content_filter")
                return
        piece, held[index] = confirmed[len(choice.text):], text[len(confirmed):]
        if piece:
            choice.text = confirmed
            yield Event("delta", index, piece)

    try:
        async with aclosing(upstream.merged(streams)) as events:
            async for event in events:
                if event.index in cut:
                    continue
                choice, ended = choices[event.index], event.kind == "finish"
                if not ended:
                    timing.mark_token()
                if not ended or held[event.index]:  # at the end, what was held back is checked as complete
                    for out in moderated(event.index, choice.text + held[event.index] + event.text, final=ended):
                        yield out
                if ended and event.index not in cut:
                    choice.finish_reason = event.finish_reason
                    yield event
                if len(cut) == len(choices):
                    break  # closing the stream stops the upstream
    except UpstreamUnavailable as error:
        outcome.error, outcome.status_code = str(error), 503
        raise
    except (asyncio.CancelledError, GeneratorExit):
        outcome.incomplete = True
        outcome.status_code = 499  # client closed the request (nginx's name for it)
        raise
    finally:
        for stream in streams:  # tokens the upstream reported, even for a cut answer
            c = choices[stream.index]
            c.prompt_tokens = stream.choice.prompt_tokens or c.prompt_tokens
            c.completion_tokens = stream.choice.completion_tokens or c.completion_tokens
        outcome.ttft_ms, outcome.latency_ms = timing.ttft_ms, timing.elapsed_ms
        await asyncio.shield(database_sync_to_async(services.finish)(plan, outcome))
