"""Prompts, one at a time (a file of them: labeling.importing)."""
from __future__ import annotations

from ..models import Project, Prompt


def create_prompt(project: Project, messages: list, *, external_id=None, tags=None, source="") -> Prompt:
    """A prompt of the project: chat messages ending with the user's turn (checked at the edge);
    its train / held-out split is drawn from its uid."""
    return Prompt.objects.create(project=project, messages=messages, external_id=external_id,
                                 tags=[] if tags is None else tags, source=source)


def add_prompt_once(project: Project, messages: list, *, external_id: str, source="", tags=None) -> tuple[Prompt, bool]:
    """The project's prompt with this external id, created from these messages if there is none
    yet (another part of rankloop, such as the chat, sending the same thing twice): (prompt, created)."""
    return Prompt.objects.get_or_create(project=project, external_id=external_id,
                                        defaults={"messages": messages, "source": source,
                                                  "tags": [] if tags is None else tags})


def delete_prompt(prompt: Prompt) -> None:
    """The prompt goes, with its candidates, tasks, annotations and pairs (one transaction)."""
    prompt.delete()
