"""Celery tasks of a round: thin, each calls one service. train_* and run_* go to the gpu queue;
each stage runs as a subprocess (rlhf.launcher), so a worker never holds a model."""
from celery import shared_task

from . import services
from .models import TrainingRun


def _execute(task, run_id):
    from . import launcher

    run = TrainingRun.objects.select_related("round").get(pk=run_id)
    return launcher.execute(run, celery_id=task.request.id or "")


@shared_task(bind=True, name="rlhf.tasks.train_reward_model")
def train_reward_model(self, run_id):
    return _execute(self, run_id)


@shared_task(bind=True, name="rlhf.tasks.train_sft")
def train_sft(self, run_id):
    return _execute(self, run_id)


@shared_task(bind=True, name="rlhf.tasks.train_policy")
def train_policy(self, run_id):
    return _execute(self, run_id)


@shared_task(bind=True, name="rlhf.tasks.run_evaluation")
def run_evaluation(self, run_id):
    return _execute(self, run_id)


@shared_task(name=services.FINISH_GENERATION_TASK)
def finish_generation(round_id):
    """After the round's generation job (linked to it): open the round for labeling, or fail it."""
    from .models import Round

    services.finish_generation(Round.objects.get(pk=round_id))


@shared_task(name="rlhf.tasks.reap_lost_runs")
def reap_lost_runs():
    """Periodic (beat): fail runs whose worker stopped sending heartbeats."""
    return services.reap_lost_runs()


@shared_task(name=services.SCORE_UNCERTAINTY_TASK)
def score_uncertainty(project_id):
    """Score a project's open tasks with its latest reward model (queue order uncertainty)."""
    from labeling.models import Project

    from . import uncertainty

    return uncertainty.score_open_tasks(Project.objects.get(pk=project_id))
