"""Talking to the upstream inference server (an OpenAI-compatible `transformers serve` or vLLM)
with httpx, asynchronously: no database here. The gateway asks the upstream for one answer per
request (`transformers serve` ignores `n`), n requests at once for n > 1, and merges them.
Timeouts on connect and on every read: an upstream that is down or silent ends in
UpstreamUnavailable, never a hang."""
from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from dataclasses import dataclass, field

import httpx
from django.conf import settings

from rankloop.errors import Unavailable


class UpstreamUnavailable(Unavailable):
    """The upstream could not be reached, did not answer in time, or answered with an error."""

    code = "upstream_unavailable"


_clients: dict = {}


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.RANKLOOP_UPSTREAM_CONNECT_TIMEOUT_S, read=settings.RANKLOOP_UPSTREAM_READ_TIMEOUT_S,
        write=settings.RANKLOOP_UPSTREAM_CONNECT_TIMEOUT_S, pool=settings.RANKLOOP_UPSTREAM_CONNECT_TIMEOUT_S,
    )


def client() -> httpx.AsyncClient:
    """One connection pool per event loop (uvicorn has one per process)."""
    loop = asyncio.get_running_loop()
    found = _clients.get(id(loop))
    if found is None or found[0] is not loop:
        found = (loop, httpx.AsyncClient(timeout=_timeout(), limits=httpx.Limits(max_connections=256)))
        _clients[id(loop)] = found
    return found[1]


def _describe(error: Exception, url: str) -> str:
    if isinstance(error, httpx.ConnectTimeout):
        return f"The model server at {url} did not accept the connection in time."
    if isinstance(error, httpx.ConnectError):
        return f"The model server at {url} is not reachable (connection refused or unknown host)."
    if isinstance(error, httpx.ReadTimeout):
        return (f"The model server at {url} stopped answering "
                f"(no data for {settings.RANKLOOP_UPSTREAM_READ_TIMEOUT_S:g} s).")
    if isinstance(error, httpx.HTTPError):
        return f"The model server at {url} failed: {type(error).__name__}."
    return f"The model server at {url} failed."


@dataclass
class Choice:
    index: int
    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Event:
    """What a stream yields: a piece of text of one choice, or one choice's end."""

    kind: str  # "delta" | "finish"
    index: int
    text: str = ""
    finish_reason: str | None = None


class UpstreamStream:
    """One streamed answer from the upstream, opened (status and headers read) by `open()`."""

    def __init__(self, base_url: str, body: dict, index: int):
        self.base_url, self.body, self.index = base_url.rstrip("/"), body, index
        self.response = None
        self.choice = Choice(index)
        self.stopped = False  # its answer was cut: read no more, close it (the upstream stops generating)

    def stop(self):
        self.stopped = True

    async def open(self):
        request = client().build_request("POST", f"{self.base_url}/chat/completions",
                                         json={**self.body, "stream": True,
                                               # the server's own token count: re-encoding the
                                               # decoded text can count differently
                                               "stream_options": {"include_usage": True}},
                                         timeout=_timeout())
        try:
            self.response = await client().send(request, stream=True)
        except httpx.HTTPError as error:
            raise UpstreamUnavailable(_describe(error, self.base_url)) from error
        if self.response.status_code != 200:
            try:
                detail = (await self.response.aread())[:300].decode(errors="replace")
            except httpx.HTTPError:
                detail = ""
            await self.close()
            raise UpstreamUnavailable(
                f"The model server at {self.base_url} answered {self.response.status_code}"
                + (f": {detail}" if detail else ".")
            )
        return self

    async def events(self):
        """Text deltas, then one finish event. UpstreamUnavailable when it goes silent."""
        try:
            async for line in self.response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    continue
                if "error" in chunk and not chunk.get("choices"):
                    raise UpstreamUnavailable(f"The model server failed while answering: {str(chunk['error'])[:200]}")
                usage = chunk.get("usage") or {}
                if usage:
                    self.choice.prompt_tokens = usage.get("prompt_tokens") or 0
                    self.choice.completion_tokens = usage.get("completion_tokens") or 0
                for c in chunk.get("choices") or []:
                    text = (c.get("delta") or {}).get("content") or ""
                    if text:
                        self.choice.text += text
                        yield Event("delta", self.index, text)
                    if c.get("finish_reason"):
                        self.choice.finish_reason = c["finish_reason"]
        except httpx.HTTPError as error:
            raise UpstreamUnavailable(_describe(error, self.base_url)) from error
        yield Event("finish", self.index, finish_reason=self.choice.finish_reason or "stop")

    async def close(self):
        if self.response is not None:
            await self.response.aclose()


async def open_streams(base_url: str, bodies: list[dict]) -> list[UpstreamStream]:
    """Open one stream per body at once; all or none (the others are closed on a failure)."""
    streams = [UpstreamStream(base_url, body, i) for i, body in enumerate(bodies)]
    results = await asyncio.gather(*(s.open() for s in streams), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)
        raise failures[0]
    return streams


async def merged(streams: list[UpstreamStream]):
    """The events of several streams as they come. Closing this generator (a client that went
    away) cancels the readers and closes every upstream response, which stops the upstream's
    generation."""
    if len(streams) == 1:
        try:
            async for event in streams[0].events():
                yield event
        finally:
            await streams[0].close()
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(stream):
        try:
            async with aclosing(stream.events()) as events:
                async for event in events:
                    if stream.stopped:
                        break
                    await queue.put(event)
            if stream.stopped:
                await stream.close()  # one of n answers cut: its upstream request ends now, not at max_tokens
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            await queue.put(error)
            return
        await queue.put(None)

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    try:
        running = len(tasks)
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)


@dataclass
class Timing:
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None

    def mark_token(self):
        if self.first_token is None:
            self.first_token = time.perf_counter()

    @property
    def ttft_ms(self):
        return None if self.first_token is None else (self.first_token - self.started) * 1000

    @property
    def elapsed_ms(self):
        return (time.perf_counter() - self.started) * 1000
