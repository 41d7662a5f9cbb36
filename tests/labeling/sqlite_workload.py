"""Run by test_sqlite.py in its own process: rankloop's embedded default (SQLite, no DATABASE_URL)
under concurrent annotators. Prints one JSON object with what the test checks."""
import json
import os
import random
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.pop("DATABASE_URL", None)
os.environ["DJANGO_SETTINGS_MODULE"] = "rankloop.settings"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402

from labeling.actions.annotations import submit_annotation  # noqa: E402
from labeling.actions.assignments import assign_next, skip_task  # noqa: E402
from labeling.actions.memberships import add_annotator  # noqa: E402
from labeling.actions.tasks import create_task  # noqa: E402
from labeling.models import Annotation, Assignment, Candidate, ComparisonTask, PreferencePair, Project, Prompt  # noqa: E402

OVERLAP, TASKS, ANNOTATORS, K = 2, 30, 6, 3


def annotate_until_done(project, user, errors):
    rng = random.Random(user.pk)
    try:
        while (assignment := assign_next(project, user)) is not None:
            if rng.randrange(6) == 0:
                skip_task(assignment.pk, user)
                continue
            payload = {"ranking": [[c] for c in rng.sample(assignment.shown_order, K)]}
            first = submit_annotation(assignment.pk, user, payload)
            again = submit_annotation(assignment.pk, user, payload)  # repeated: nothing new
            assert first.pk == again.pk
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connection.close()


def main():
    call_command("migrate", verbosity=0, interactive=False)
    users = [get_user_model().objects.create_user(f"sqlite-{i}") for i in range(ANNOTATORS)]
    project = Project.objects.create(name="SQLite load", overlap=OVERLAP, mode="ranking", candidates_per_prompt=K)
    for user in users:
        add_annotator(project, user)
    for i in range(TASKS):
        prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": f"Q{i}?"}])
        create_task(prompt, [Candidate.objects.create(prompt=prompt, text=f"A{i}.{j}") for j in range(K)])
    errors = []
    threads = [threading.Thread(target=annotate_until_done, args=(project, u, errors)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    per_task = dict(Annotation.objects.values_list("task").annotate(n=Count("id")).values_list("task", "n"))
    tasks = list(ComparisonTask.objects.all())
    votes = PreferencePair.objects.values("task").annotate(v=Sum("votes_a") + Sum("votes_b") + Sum("votes_tie"))
    print(json.dumps({
        "errors": errors,
        "annotations": sum(per_task.values()),
        "over_annotated": sum(1 for t in tasks if per_task.get(t.pk, 0) > t.overlap),
        "counters_match": all(t.annotations_done == per_task.get(t.pk, 0) and t.leased == 0 for t in tasks),
        "live_leases": Assignment.objects.filter(status=Assignment.Status.LEASED).count(),
        "pairs": PreferencePair.objects.count(),
        # C(3,2) = 3 pairs per annotated task, each with one vote per annotation of the task
        "pair_votes_match": all(row["v"] == 3 * per_task[row["task"]] for row in votes),
        "tasks_with_pairs": len(votes),
        "tasks_annotated": len(per_task),
    }))


if __name__ == "__main__":
    main()
