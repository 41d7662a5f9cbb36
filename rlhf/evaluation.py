"""What a round's evaluation says, for people: each figure of `rlhf/training/evaluate.py`'s output
(stored verbatim as round.metrics["evaluation"]) with its 95% interval, the number of units it
was measured on and its verdict, the judge's verdict beside the reward model's, and the prompts on
which the two disagree. Read-only: nothing here writes.

A figure whose interval cannot be told from no change reads "no detectable change", a figure
measured on nothing reads "not measured"; a deploy rule can use an interval's bound
(`figure_value(metrics, "evaluation.reward_diff.low")`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

# Fewer held-out prompts than this and an interval is too wide to see a modest change (a paired
# reward difference with sd 1 needs ~64 prompts for a +-0.25 interval); the page says so.
ENOUGH_EVAL_PROMPTS = 64

NOT_MEASURED = "not measured"

# (path in the evaluation JSON, label, what n counts)
FIGURES = [
    ("reward_diff", "Reward gain (new − old, mean over prompts)", "prompts"),
    ("win_rate", "Win rate of new over old (reward model)", "prompts"),
    ("kl_new_old", "KL(new ‖ old) per answer", "prompts"),
    ("rm_accuracy", "Reward model accuracy on held-out pairs", "pairs"),
    ("judge.reward_diff", "Judge: reward gain (new − old)", "prompts"),
    ("judge.win_rate", "Judge: win rate of new over old", "prompts"),
]

VERDICT_CLASSES = {"gain": "good", "above chance": "good", "loss": "bad", "below chance": "bad", "changed": "info"}


def _lookup(data, path: str):
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def figure_value(metrics: dict, path: str):
    """A number from the round's metrics by dotted path (a flat key or e.g.
    "evaluation.reward_diff.low"); None when it was not measured."""
    return _number(_lookup(metrics or {}, path))


@dataclass
class FigureRow:
    label: str
    mean: float | None
    low: float | None
    high: float | None
    n: int
    unit: str
    verdict: str

    @property
    def measured(self) -> bool:
        return self.mean is not None

    @property
    def verdict_class(self) -> str:
        return VERDICT_CLASSES.get(self.verdict, "muted")

    @property
    def interval(self) -> str:
        if self.low is None or self.high is None:
            return "no interval (fewer than 2 " + self.unit + ")" if self.measured else ""
        return f"[{self.low:.4f}, {self.high:.4f}]"


@dataclass
class Disagreement:
    prompt: str
    reward_model_diff: float
    judge_diff: float


@dataclass
class EvaluationReport:
    rows: list[FigureRow]
    eval_prompts: int
    samples_per_prompt: int | None
    has_judge: bool
    disagreements: list[Disagreement] = field(default_factory=list)
    verdicts_differ: bool = False
    on_training_prompts: bool = False  # the project had no held-out prompts (rlhf.launcher.plan_evaluation)

    @property
    def too_few_prompts(self) -> bool:
        return self.eval_prompts < ENOUGH_EVAL_PROMPTS

    @property
    def enough(self) -> int:
        return ENOUGH_EVAL_PROMPTS


def prompt_text(prompt) -> str:
    """A prompt as one line of text (conversational prompts: the last user turn)."""
    if isinstance(prompt, list):
        turns = [m.get("content", "") for m in prompt if isinstance(m, dict)]
        prompt = turns[-1] if turns else ""
    text = " ".join(str(prompt).split())
    return text if len(text) <= 160 else text[:157] + "…"


def _row(evaluation: dict, path: str, label: str, unit: str) -> FigureRow | None:
    figure = _lookup(evaluation, path)
    if not isinstance(figure, dict):
        return None
    mean = _number(figure.get("mean"))
    return FigureRow(label=label, mean=mean, low=_number(figure.get("low")), high=_number(figure.get("high")),
                     n=int(figure.get("n") or 0), unit=unit,
                     verdict=(figure.get("verdict") or NOT_MEASURED) if mean is not None else NOT_MEASURED)


def report(metrics: dict) -> EvaluationReport | None:
    """The evaluation of a round as rows for its page; None when the round has none (yet), or
    only the flat figures of an evaluation from before intervals."""
    evaluation = (metrics or {}).get("evaluation")
    if not isinstance(evaluation, dict):
        return None
    rows = [row for path, label, unit in FIGURES if (row := _row(evaluation, path, label, unit))]
    judge = evaluation.get("judge")
    disagreements = [
        Disagreement(prompt=prompt_text(d.get("prompt")), reward_model_diff=d.get("reward_model_diff") or 0.0,
                     judge_diff=d.get("judge_diff") or 0.0)
        for d in evaluation.get("judge_disagreements") or [] if isinstance(d, dict)]
    rm_verdict = _lookup(evaluation, "reward_diff.verdict")
    judge_verdict = _lookup(evaluation, "judge.reward_diff.verdict")
    return EvaluationReport(
        rows=rows,
        eval_prompts=int(_lookup(evaluation, "figures.eval_prompts") or len(evaluation.get("per_prompt") or [])),
        samples_per_prompt=_lookup(evaluation, "settings.samples_per_prompt"), has_judge=isinstance(judge, dict),
        disagreements=disagreements,
        verdicts_differ=isinstance(judge, dict) and rm_verdict is not None and judge_verdict != rm_verdict,
        on_training_prompts=metrics.get("eval_split") == "train")
