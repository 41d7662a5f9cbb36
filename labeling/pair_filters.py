"""Which preference pairs a consumer reads: one filter for the export and for training.

An export reads its filters from query parameters (`PairFilters.from_params`); a round stores
them as a JSON object (`PairFilters.from_settings`, `to_settings`). Both give the same
`PairFilters`, and `pairs()` is the one query that applies them, so a round trains on exactly the
rows an export with the same filters gives (rlhf.datasets writes the export's rows).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ExportError
from .models import PreferencePair, Prompt
from .queries import pair_sources
from .submission import text_problem

SETTINGS_KEYS = ("min_agreement", "include_ties", "rounds", "sources")


@dataclass(frozen=True)
class PairFilters:
    rounds: list | None = None  # round numbers within the project
    min_agreement: float | None = None
    include_ties: bool = False
    include_gold: bool = False
    split: str | None = None
    sources: list | None = None  # e.g. ["labels", "import:hh-rlhf"]

    @classmethod
    def from_params(cls, params) -> PairFilters:
        """From query parameters (or command options): rounds=1,2 min_agreement=0.7
        ties=include|exclude gold=include|exclude split=train|heldout source=labels,import:hh
        (repeatable: source=labels&source=import:hh)."""
        errors = {}
        sources = _sources(params, errors)
        rounds = None
        raw_rounds = params.get("rounds") or params.get("round")
        if raw_rounds:
            try:
                rounds = sorted({int(r) for r in str(raw_rounds).split(",") if r.strip()})
                if any(r < 0 or r > 2**31 for r in rounds):
                    raise ValueError
            except ValueError:
                errors["rounds"] = "Round numbers, comma-separated (e.g. rounds=1,2)."
        min_agreement = params.get("min_agreement")
        if min_agreement not in (None, ""):
            try:
                min_agreement = float(min_agreement)
                if not 0.0 <= min_agreement <= 1.0:
                    raise ValueError
            except (TypeError, ValueError):
                errors["min_agreement"] = "A number from 0 to 1."
                min_agreement = None
        else:
            min_agreement = None
        include = {}
        for name in ("ties", "gold"):
            value = str(params.get(name) or "exclude").lower()
            if value not in ("include", "exclude", "true", "false", "1", "0"):
                errors[name] = "include or exclude."
            include[name] = value in ("include", "true", "1")
        split = params.get("split") or None
        if split not in (None, *Prompt.Split.values):
            errors["split"] = f"One of {', '.join(Prompt.Split.values)}."
        if errors:
            raise ExportError("Bad export filters: " + "; ".join(f"{k}: {v}" for k, v in errors.items()), errors)
        return cls(rounds=rounds, min_agreement=min_agreement, include_ties=include["ties"],
                   include_gold=include["gold"], split=split, sources=sources)

    @classmethod
    def from_settings(cls, settings: dict, *, split: str | None = None) -> PairFilters:
        """From a round's stored filters (checked by `check_settings`); gold never trains."""
        return cls(**settings, split=split)

    @staticmethod
    def check_settings(project, settings) -> dict:
        """A round's filters, {"min_agreement": 0..1, "include_ties": bool, "rounds": [round
        numbers], "sources": [pair sources, e.g. "labels" or "import:hh-rlhf"]}, checked against
        the project's pairs (a round or source they name must have pairs), in their stored form."""
        if not isinstance(settings, dict):
            raise ExportError("Data filters must be an object, e.g. {\"min_agreement\": 0.6}.")
        bad = sorted(set(settings) - set(SETTINGS_KEYS))
        if bad:
            raise ExportError(f"Unknown data filter(s) {', '.join(bad)}; use {', '.join(sorted(SETTINGS_KEYS))}.")
        clean = {}
        if settings.get("min_agreement") not in (None, ""):
            try:
                value = float(settings["min_agreement"])
            except (TypeError, ValueError):
                raise ExportError("min_agreement must be a number between 0 and 1.") from None
            if not 0.0 <= value <= 1.0:
                raise ExportError("min_agreement must be between 0 and 1.")
            clean["min_agreement"] = value
        if "include_ties" in settings:
            if not isinstance(settings["include_ties"], bool):
                raise ExportError("include_ties must be true or false.")
            clean["include_ties"] = settings["include_ties"]
        if settings.get("rounds"):
            rounds = settings["rounds"]
            if not isinstance(rounds, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in rounds):
                raise ExportError("rounds must be a list of round numbers.")
            known = set(PreferencePair.objects.filter(project=project, round_number__in=rounds)
                        .order_by().values_list("round_number", flat=True).distinct())
            missing = sorted(set(rounds) - known)
            if missing:
                raise ExportError(f"{project} has no pairs from round(s) {', '.join(map(str, missing))}.")
            clean["rounds"] = sorted(set(rounds))
        if settings.get("sources"):
            sources = settings["sources"]
            if isinstance(sources, str):
                sources = [sources]
            if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
                raise ExportError('sources must be a list of pair sources, e.g. ["labels", "import:hh-rlhf"].')
            sources = sorted({s.strip() for s in sources})
            known = pair_sources(project)
            missing = [s for s in sources if s not in known]
            if missing:
                raise ExportError(f"{project} has no pairs from {', '.join(repr(s[:120]) for s in missing)}; "
                                  f"its sources are {', '.join(known) or 'none yet'}.")
            clean["sources"] = sources
        return clean

    def pairs(self, project):
        """The project's pairs these filters keep, in id order."""
        pairs = PreferencePair.objects.filter(project=project)
        if self.sources:
            pairs = pairs.filter(source__in=self.sources)
        if self.rounds:
            pairs = pairs.filter(round_number__in=self.rounds)
        if self.min_agreement is not None:
            pairs = pairs.filter(agreement__gte=self.min_agreement)
        if not self.include_ties:
            pairs = pairs.filter(is_tie=False)
        if not self.include_gold:
            pairs = pairs.filter(is_gold=False)
        if self.split:
            pairs = pairs.filter(split=self.split)
        return pairs.order_by("id")


def _sources(params, errors):
    """The `source` filter: names, comma-separated or repeated (also as `sources`)."""
    values = []
    for name in ("source", "sources"):
        if hasattr(params, "getlist"):
            values += params.getlist(name)
        elif params.get(name) is not None:
            given = params[name]
            values += given if isinstance(given, (list, tuple)) else [given]
    names = []
    for value in values:
        if not isinstance(value, str):
            errors["source"] = "Source names, comma-separated (e.g. source=labels,import:hh-rlhf)."
            return None
        names += [n.strip() for n in value.split(",") if n.strip()]
    if any(len(n) > 120 or text_problem(n) for n in names):
        errors["source"] = "Source names of at most 120 characters (e.g. labels, import:hh-rlhf)."
        return None
    return sorted(set(names)) or None
