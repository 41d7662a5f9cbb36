"""The statistics of an evaluation (numpy/scipy only, so the platform can reuse them): each figure
with a confidence interval over independent units (prompts, or held-out pairs), and a verdict.

- mean_interval: mean and Student-t interval (for per-prompt reward differences and KL);
- bootstrap_interval: mean and percentile bootstrap interval (for per-prompt win rates, which
  are bounded and often lumpy);
- wilson_interval: a proportion of independent trials (reward-model accuracy over pairs);
- win_fraction: how often one policy's answer beats the other's on one prompt, over all pairs of
  their answers (ties count half);
- verdict: "gain" / "loss" when the interval excludes the no-change value, else
  "no detectable change"; "not measured" when there is no figure at all.

An interval is None (low/high None) when it cannot be computed (fewer than two units); the verdict
is then "no detectable change": one prompt cannot show a change."""
from __future__ import annotations

import numpy as np
from scipy import stats

GAIN, LOSS, NO_CHANGE, NOT_MEASURED = "gain", "loss", "no detectable change", "not measured"


def _figure(mean, low, high, n, method, confidence):
    def as_float(v):
        return None if v is None else float(v)

    return {"mean": as_float(mean), "low": as_float(low), "high": as_float(high), "n": int(n),
            "confidence": confidence, "method": method}


def mean_interval(values, confidence: float = 0.95) -> dict:
    """Mean of independent values with a Student-t interval."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return _figure(None, None, None, 0, "t", confidence)
    mean = x.mean()
    if x.size < 2:
        return _figure(mean, None, None, 1, "t", confidence)
    sem = stats.sem(x)
    low, high = (mean, mean) if sem == 0 else stats.t.interval(confidence, x.size - 1, loc=mean, scale=sem)
    return _figure(mean, low, high, x.size, "t", confidence)


def bootstrap_interval(values, confidence: float = 0.95, *, resamples: int = 10_000, seed: int = 0) -> dict:
    """Mean of independent values with a percentile bootstrap interval (resampling the values)."""
    x = np.asarray(values, dtype=float)
    method = "percentile bootstrap"
    if x.size == 0:
        return _figure(None, None, None, 0, method, confidence)
    mean = x.mean()
    if x.size < 2:
        return _figure(mean, None, None, 1, method, confidence)
    if np.all(x == x[0]):  # every resample is the same; scipy would warn about a degenerate distribution
        return _figure(mean, mean, mean, x.size, method, confidence)
    result = stats.bootstrap((x,), np.mean, n_resamples=resamples, confidence_level=confidence,
                             method="percentile", rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return _figure(mean, ci.low, ci.high, x.size, method, confidence)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> dict:
    """A proportion of independent trials with its Wilson score interval; mean None when no trials."""
    if trials == 0:
        return _figure(None, None, None, 0, "wilson", confidence)
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return _figure(successes / trials, ci.low, ci.high, trials, "wilson", confidence)


def win_fraction(new_scores, old_scores) -> float:
    """P(a new answer scores above an old one) over all (new, old) pairs of one prompt's answers;
    ties count half. 0.5 is no difference."""
    new = np.asarray(new_scores, dtype=float)[:, None]
    old = np.asarray(old_scores, dtype=float)[None, :]
    return float(((new > old) + 0.5 * (new == old)).mean())


def verdict(figure: dict, null: float = 0.0, *, up: str = GAIN, down: str = LOSS) -> str:
    """up when the whole interval lies above `null`, down when below, otherwise no detectable change."""
    if figure.get("mean") is None:
        return NOT_MEASURED
    low, high = figure.get("low"), figure.get("high")
    if low is None or high is None:
        return NO_CHANGE
    if low > null:
        return up
    if high < null:
        return down
    return NO_CHANGE


def with_verdict(figure: dict, null: float = 0.0, **labels) -> dict:
    return {**figure, "null": null, "verdict": verdict(figure, null, **labels)}
