"""Rate limits of the chat and the /v1/ API: requests per minute and tokens per day, per user and
per API token, counted in the default cache (Redis with CACHE_URL: shared by every process on
every machine; else var/cache, shared by one machine's processes). The counting is the API's
sliding window (rankloop.api_common.SlidingWindowThrottle): at most N in any window, not per
clock minute or day."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from rankloop.api_common import SlidingWindowThrottle


class Window(SlidingWindowThrottle):
    """One sliding counter under `key`, of `limit` per `period` ("min" or "day")."""

    def __init__(self, key: str, limit: int, period: str):
        self.rate = f"{limit}/{period}"
        self._key = key
        super().__init__()

    def get_cache_key(self, request, view):
        return self._key

    # -- requests: SlidingWindowThrottle.allow_request(None, None) counts one and says yes/no.

    def _setup(self):
        self.key = self._key
        self.now = self.timer()
        self.step = self.duration / self.sub_windows
        self.bucket = int(self.now // self.step)
        self.ttl = self.duration + 2 * self.step + 1

    def used(self) -> int:
        """What the window holds now (nothing is counted)."""
        self._setup()
        current = self.cache.get(self._bucket_key(self.bucket), 0)
        self._counts = self._earlier_counts() + [current]
        return sum(self._counts)

    def retry_after(self) -> float:
        """Seconds until the window has room for one more (after used())."""
        return self._time_until_room(self._counts)

    def add(self, amount: int) -> None:
        """Count `amount` more (tokens, after a request is done)."""
        if amount <= 0:
            return
        self._setup()
        key = self._bucket_key(self.bucket)
        try:
            self.cache.incr(key, amount)
        except ValueError:
            if not self.cache.add(key, amount, self.ttl):
                self.cache.incr(key, amount)


def token_digest(key: str) -> str:
    """The cache never holds a token, only a hash of it (as TokenRateThrottle does)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class LimitState:
    requests_per_minute: int
    tokens_per_day: int
    remaining_requests: int = 0
    remaining_tokens: int = 0
    reset_requests_s: float = 0.0
    reset_tokens_s: float = 0.0
    refused: str = ""  # "" or what ran out: "requests" or "tokens"
    retry_after_s: float = 0.0
    token_windows: list = field(default_factory=list)

    def headers(self) -> dict:
        headers = {
            "x-ratelimit-limit-requests": str(self.requests_per_minute),
            "x-ratelimit-remaining-requests": str(max(0, self.remaining_requests)),
            "x-ratelimit-reset-requests": f"{self.reset_requests_s:.3f}s",
            "x-ratelimit-limit-tokens": str(self.tokens_per_day),
            "x-ratelimit-remaining-tokens": str(max(0, self.remaining_tokens)),
            "x-ratelimit-reset-tokens": f"{self.reset_tokens_s:.3f}s",
        }
        if self.refused:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))
        return headers

    def add_tokens(self, tokens: int) -> None:
        for window in self.token_windows:
            window.add(tokens)


def check(identities: list[str], *, requests_per_minute: int, tokens_per_day: int) -> LimitState:
    """Check (and, when allowed, count) one request against each identity's windows (e.g.
    ["p3:u7", "p3:t<digest>"]). Refused when any identity has spent its tokens for the day or
    its requests for the minute; a refused request counts nowhere."""
    state = LimitState(requests_per_minute, tokens_per_day)
    token_windows = [Window(f"serving:tokens:{i}", tokens_per_day, "day") for i in identities]
    remaining_tokens, reset_tokens = tokens_per_day, 0.0
    for window in token_windows:
        used = window.used()
        remaining_tokens = min(remaining_tokens, tokens_per_day - used)
        if used >= tokens_per_day:
            state.refused, state.retry_after_s = "tokens", max(state.retry_after_s, window.retry_after())
            reset_tokens = max(reset_tokens, state.retry_after_s)
    state.remaining_tokens, state.reset_tokens_s = remaining_tokens, reset_tokens
    state.token_windows = token_windows
    if state.refused:
        state.remaining_requests = requests_per_minute
        return state
    counted = []
    remaining_requests = requests_per_minute
    for identity in identities:
        window = Window(f"serving:requests:{identity}", requests_per_minute, "min")
        if not window.allow_request(None, None):
            for done in counted:  # a refused request counts nowhere
                try:
                    done.cache.decr(done._bucket_key(done.bucket))
                except ValueError:
                    pass
            state.refused, state.retry_after_s = "requests", window.wait()
            state.reset_requests_s = state.retry_after_s
            state.remaining_requests = 0
            return state
        counted.append(window)
        used = sum(window._earlier_counts()) + (window.cache.get(window._bucket_key(window.bucket)) or 0)
        remaining_requests = min(remaining_requests, requests_per_minute - used)
    state.remaining_requests = remaining_requests
    state.reset_requests_s = 60.0 / SlidingWindowThrottle.sub_windows
    return state
