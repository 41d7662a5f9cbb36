"""Candidates: answers to a prompt from outside the product's generation (another system, a
person)."""
from __future__ import annotations

from ..models import Candidate, Prompt


def add_candidate(prompt: Prompt, text: str, *, external_source="", external_id="") -> Candidate:
    """An external answer to the prompt."""
    return Candidate.objects.create(prompt=prompt, text=text, external_source=external_source,
                                    external_id=external_id)
