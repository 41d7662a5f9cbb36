"""Training data for a round, from the stored preference pairs: TRL's conversational
preference rows, split by prompt (Prompt.split, stable across rounds), gold tasks excluded."""
from __future__ import annotations

from labeling.errors import ExportError
from labeling.exporting import export_rows
from labeling.models import Annotation, Prompt
from labeling.pair_filters import PairFilters


def _error(message):
    from .services import RoundError

    return RoundError(message)


def validate_filters(project, filters) -> dict:
    """A round's data filters, checked against the project's pairs, in their stored form (see
    labeling.pair_filters: the export reads the same filters)."""
    try:
        return PairFilters.check_settings(project, filters)
    except ExportError as exc:
        raise _error(exc.message) from None


def filtered_pairs(project, filters: dict, *, split=None):
    return PairFilters.from_settings(filters, split=split).pairs(project)


def pair_breakdown(project, filters: dict) -> dict:
    """How many pairs a round with these filters trains on, and why the others do not: the
    counts that train come from filtered_pairs, the filter the training itself uses. Two queries."""
    from django.db.models import Count, Q

    kept = Q(is_gold=False)  # gold pairs check annotators; they never train
    counts = {"total": Count("id", filter=kept), "gold": Count("id", filter=Q(is_gold=True))}
    if filters.get("sources"):
        from_sources = Q(source__in=filters["sources"])
        counts["other_sources"] = Count("id", filter=kept & ~from_sources)
        kept &= from_sources
    if filters.get("rounds"):
        in_rounds = Q(round_number__in=filters["rounds"])
        counts["other_rounds"] = Count("id", filter=kept & ~in_rounds)
        kept &= in_rounds
    if not filters.get("include_ties", False):
        counts["ties"] = Count("id", filter=kept & Q(is_tie=True))
        kept &= Q(is_tie=False)
    if filters.get("min_agreement") is not None:
        counts["low_agreement"] = Count("id", filter=kept & ~Q(agreement__gte=filters["min_agreement"]))
    left_out = PairFilters(include_ties=True, include_gold=True).pairs(project).aggregate(**counts)
    used = filtered_pairs(project, filters).aggregate(
        used=Count("id"), train=Count("id", filter=Q(split=Prompt.Split.TRAIN)),
        heldout=Count("id", filter=Q(split=Prompt.Split.HELDOUT)))
    return {"ties": 0, "low_agreement": 0, "other_rounds": 0, "other_sources": 0, **left_out,
            "min_agreement": filters.get("min_agreement"), **used}


def describe_breakdown(counts: dict) -> str:
    """e.g. "12 pairs will train (18 in all: 6 ties left out; 2 on held-out prompts, kept to evaluate)"."""
    def n(count, word):
        return f"{count} {word}{'' if count == 1 else 's'}"

    parts = []
    if counts.get("other_sources"):
        parts.append(f"{counts['other_sources']} from other sources")
    if counts["ties"]:
        parts.append(f"{n(counts['ties'], 'tie')} left out")
    if counts["low_agreement"]:
        parts.append(f"{counts['low_agreement']} below agreement {counts['min_agreement']:g}")
    if counts["other_rounds"]:
        parts.append(f"{counts['other_rounds']} from other rounds")
    if counts["heldout"]:
        parts.append(f"{counts['heldout']} on held-out prompts, kept to evaluate the reward model")
    detail = f"{counts['total']} in all" + (": " + "; ".join(parts) if parts else "")
    gold = (f"; {n(counts['gold'], 'gold pair')} never train{'s' if counts['gold'] == 1 else ''}"
            if counts["gold"] else "")
    return f"{n(counts['train'], 'pair')} will train ({detail}){gold}"


def check_enough_data(project, filters: dict) -> dict:
    """Refuse, saying what is missing, when the pairs cannot train a reward model: none at all,
    only ties, a single prompt, or nothing on the training side of the split."""
    everything = PairFilters(include_ties=True).pairs(project)
    if not everything.exists():
        raise _error(f"{project} has no preference pairs yet: annotators must rank candidates "
                     "on at least two prompts before a round can train.")
    if not everything.filter(is_tie=False).exists():
        raise _error(f"All {everything.count()} preference pairs of {project} are ties; a reward model "
                     "needs pairs where annotators preferred one answer.")
    pairs = filtered_pairs(project, filters)
    count = pairs.count()
    if count == 0:
        raise _error(f"No preference pairs of {project} pass the data filters {filters}; loosen them.")
    prompts = pairs.values("prompt_id").distinct().count()
    if prompts < 2:
        raise _error(f"All {count} usable preference pairs come from one prompt; rank candidates on at "
                     "least two prompts so training and evaluation are not the same question.")
    train = pairs.filter(split=Prompt.Split.TRAIN).count()
    if train == 0:
        raise _error(f"All {count} usable preference pairs are on held-out prompts; none is left to train on. "
                     "Label more prompts.")
    return {"pairs": count, "prompts": prompts, "train_pairs": train, "heldout_pairs": count - train}


def preference_rows(project, filters: dict, *, split: str) -> list[dict]:
    """TRL conversational preference rows for one side of the split: the rows the export gives
    for these filters (format `conversational`), so what exports is exactly what trains."""
    return list(export_rows(project, "conversational", PairFilters.from_settings(filters, split=split)))


def policy_prompts(project, *, split: str = Prompt.Split.TRAIN, limit: int | None = None) -> list[list[dict]]:
    """Prompt messages to optimize (or evaluate) the policy on, in stable order."""
    prompts = Prompt.objects.filter(project=project, split=split).order_by("id").values_list("messages", flat=True)
    if limit:
        prompts = prompts[:limit]
    return list(prompts)


def demonstrations(project) -> list[dict]:
    """Annotators' rewritten ideal answers as SFT chat rows (training side of the split only)."""
    rows = (Annotation.objects.filter(task__project=project, task__is_gold=False, is_rejected=False,
                                      task__prompt__split=Prompt.Split.TRAIN)
            .exclude(ideal_answer="").select_related("task__prompt").order_by("id"))
    return [{"messages": [*a.task.prompt.messages, {"role": "assistant", "content": a.ideal_answer}]} for a in rows]
