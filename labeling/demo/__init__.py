"""The demo: users, two projects and their tasks, from hand-written prompts and answers.

`load_demo()` is idempotent: a second run finds everything in place and adds nothing."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction

from ..actions.memberships import add_annotator
from ..actions.tasks import create_task
from ..models import Candidate, Project, Prompt
from .data import PROMPTS

USERS = [
    # (username, password, staff)
    ("admin", "rankloop-admin", True),
    ("alice", "rankloop-alice", False),
    ("bob", "rankloop-bob", False),
]
ANNOTATORS = ["alice", "bob"]

PAIRWISE = {
    "name": "Demo: helpfulness (pairwise)",
    "description": "Which of two answers is more helpful, harmless and honest?",
    "mode": Project.Mode.PAIRWISE, "candidates_per_prompt": 2, "overlap": 2, "allow_ties": True,
    "rating_aspects": ["helpful", "harmless", "honest"], "rating_scale": 5,
    "instructions": (
        "## Compare two answers\n\n"
        "Read the conversation, then both answers. Pick the answer you would rather receive.\n\n"
        "- **Helpful**: does it actually solve the user's problem, correctly and clearly?\n"
        "- **Harmless**: does it avoid dangerous or unethical help? "
        "A polite, useful refusal beats harmful compliance.\n"
        "- **Honest**: is it accurate, and does it admit uncertainty?\n\n"
        "Choose *tie* when neither is better, and *both bad* when you would not want either. "
        "Optionally rate each answer, flag problems, explain your choice, or write the answer you wish you had seen."
    ),
}
RANKING = {
    "name": "Demo: ranking",
    "description": "Rank three answers from best to worst; ties allowed.",
    "mode": Project.Mode.RANKING, "candidates_per_prompt": 3, "overlap": 2, "allow_ties": True,
    "rating_aspects": ["helpful", "honest"], "rating_scale": 5,
    "instructions": (
        "## Rank three answers\n\n"
        "Press the number of the best answer first, then the next, then the last. "
        "If two answers are equally good, press `=` before the second one to put it in the same tier.\n\n"
        "Prefer answers that are correct, complete and safe; length alone is not quality. "
        "`Backspace` undoes the last pick, `c` clears, `Enter` submits."
    ),
}


@dataclass
class DemoSummary:
    users_created: list = field(default_factory=list)
    projects_created: list = field(default_factory=list)
    prompts_created: int = 0
    tasks_created: int = 0

    @property
    def changed(self):
        return bool(self.users_created or self.projects_created or self.prompts_created or self.tasks_created)


def load_demo() -> DemoSummary:
    """Create the demo users, projects, prompts, hand-written candidates and tasks that are
    missing. No model runs here: the model's answers come later, from a worker (models_app.demo)."""
    summary = DemoSummary()
    with transaction.atomic():
        users = _ensure_users(summary)
        for spec, pick in ((PAIRWISE, _pairwise_answers), (RANKING, _ranking_answers)):
            project = _ensure_project(spec, users, summary)
            for index, entry in enumerate(PROMPTS):
                answers = pick(entry, index)
                if answers:
                    _ensure_task(project, entry, answers, summary)
    return summary


def _ensure_users(summary):
    User = get_user_model()
    users = {}
    for username, password, staff in USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": staff, "is_superuser": staff, "email": f"{username}@example.com"}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            summary.users_created.append(username)
        users[username] = user
    return users


def _ensure_project(spec, users, summary):
    fields = {key: value for key, value in spec.items() if key != "name"}
    project, created = Project.objects.get_or_create(name=spec["name"],
                                                     defaults={**fields, "created_by": users["admin"]})
    if created:
        summary.projects_created.append(project.name)
        for username in ANNOTATORS:
            add_annotator(project, users[username])
    return project


def _pairwise_answers(entry, index):
    answers = list(enumerate(entry["answers"]))
    # Vary the gap in quality: best against the runner-up or against the worst.
    return [answers[0], answers[1] if index % 2 else answers[-1]]


def _ranking_answers(entry, index):
    answers = list(enumerate(entry["answers"]))
    return answers[:3] if len(answers) >= 3 else None


def _ensure_task(project, entry, answers, summary):
    prompt, created = Prompt.objects.get_or_create(
        project=project, external_id=f"demo:{entry['key']}",
        defaults={"messages": entry["messages"], "tags": entry["tags"], "source": "rankloop demo"},
    )
    summary.prompts_created += int(created)
    if prompt.tasks.exists():
        return
    flagged = entry.get("flagged", {})
    candidates = [
        Candidate.objects.get_or_create(
            prompt=prompt, external_source="rankloop demo", external_id=f"{entry['key']}:{i}",
            defaults={"text": text, "is_flagged": i in flagged,
                      "moderation": {"flagged": True, "reason": flagged[i]} if i in flagged else {}},
        )[0]
        for i, text in answers
    ]
    create_task(prompt, candidates)
    summary.tasks_created += 1
