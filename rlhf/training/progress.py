"""Progress of a script as JSON Lines in a file: one object a line, flushed as written, e.g.

    {"time": 1767000000.12, "event": "begin", "step": 0, "total": 40}
    {"time": 1767000001.50, "event": "step", "step": 7, "total": 40}
    {"time": 1767000001.51, "event": "log", "step": 7, "total": 40, "metrics": {"loss": 0.61}}
    {"time": 1767000000.90, "event": "log", "step": 0, "total": 40, "log": "resuming from .../checkpoint-20"}
    {"time": 1767000009.02, "event": "end", "step": 40, "total": 40}
    {"time": 1767000009.03, "event": "error", "step": null, "total": null, "log": "ValueError: ..."}

Only the main process writes (several processes of one run would repeat every line); "step"
lines come at most every `every_s` seconds, and always for the last step. "error" is written by
the process that failed, whichever it is, just before the script exits non-zero."""
from __future__ import annotations

import json
import math
import time

from transformers import TrainerCallback


def jsonable(value):
    """value as plain JSON: numpy/torch scalars as numbers, NaN and infinities as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN/inf are not JSON
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    try:
        return jsonable(value.item())  # numpy / torch scalars
    except (AttributeError, ValueError):
        return str(value)


class ProgressWriter:
    """Appends progress lines to `path` (nothing at all when `path` is empty or None)."""

    def __init__(self, path: str | None, *, enabled: bool = True):
        self.path = path
        self.enabled = bool(path) and enabled

    def write(self, event: str, step: int | None = None, total: int | None = None, **fields):
        if not self.enabled:
            return
        line = {"time": round(time.time(), 3), "event": event, "step": step, "total": total}
        line.update({k: jsonable(v) for k, v in fields.items() if v is not None})
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")
            file.flush()

    def message(self, text: str, step: int | None = None, total: int | None = None):
        self.write("log", step, total, log=text)


class ProgressCallback(TrainerCallback):
    """begin / step / log / end lines of a TRL or transformers trainer, from the main process."""

    def __init__(self, path: str | None, every_s: float = 0.5):
        self.writer = ProgressWriter(path)
        self.every_s = every_s
        self.last = -math.inf

    def _write(self, state, event, **fields):
        if state.is_world_process_zero:
            self.writer.write(event, state.global_step, state.max_steps, **fields)

    def on_train_begin(self, args, state, control, **kwargs):
        self._write(state, "begin")

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        if now - self.last < self.every_s and state.global_step < state.max_steps:
            return
        self.last = now
        self._write(state, "step")

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._write(state, "log", metrics=dict(logs or {}))

    def on_train_end(self, args, state, control, **kwargs):
        self._write(state, "end")
