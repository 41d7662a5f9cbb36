"""Gold tasks and answers for the label-quality tests."""
from labeling.actions.annotations import submit_annotation
from labeling.actions.tasks import create_task
from labeling.models import Candidate, Prompt


def make_gold(project, n):
    """n gold tasks; in each, the first answer is known to be better."""
    tasks = []
    for i in range(n):
        prompt = Prompt.objects.create(project=project, messages=[{"role": "user", "content": f"Gold question {i}?"}])
        good, bad = (Candidate.objects.create(prompt=prompt, text=f"Gold answer {i}.{j}") for j in range(2))
        tasks.append(create_task(prompt, [good, bad], is_gold=True, gold_ranking=[[good.pk], [bad.pk]]))
    return tasks


def answer(assignment, user, *, right=True):
    """Submit a pairwise choice; for a gold task, right or wrong by its gold ranking (any choice otherwise)."""
    task = assignment.task
    if task.is_gold:
        best = task.gold_ranking[0][0]
        first_is_best = assignment.shown_order[0] == best
        choice = "a" if first_is_best == right else "b"
    else:
        choice = "a"
    return submit_annotation(assignment.pk, user, {"choice": choice})
