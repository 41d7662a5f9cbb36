"""Every state change of a round and its training runs, one named function each.

Views, the API, Celery tasks and management commands call these. A round moves
draft → generating → labeling → training → evaluating → evaluated → deployed → rolled back
(or failed / cancelled); each move is recorded with who and when, and a move the machine does
not allow is refused. STATE_VIEWS below says, for each state, what pages and the API show:
its label, its badge, what its progress bar measures and which actions it offers."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta

from celery import chain, signature
from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Max, TextField, Value, When
from django.db.models.functions import Concat, Length, Right, StrIndex, Substr
from django.db.models.lookups import Exact, LessThanOrEqual
from django.utils import timezone

from rankloop.errors import RankloopError

from . import config as round_config
from .models import MetricPoint, Round, RoundTransition, TrainingRun

logger = logging.getLogger(__name__)

# The round's Celery tasks, by name (rlhf/tasks.py defines them).
RUN_TASKS = {TrainingRun.Kind.REWARD: "rlhf.tasks.train_reward_model", TrainingRun.Kind.SFT: "rlhf.tasks.train_sft",
             TrainingRun.Kind.EVAL: "rlhf.tasks.run_evaluation", "policy": "rlhf.tasks.train_policy"}
FINISH_GENERATION_TASK = "rlhf.tasks.finish_generation"
SCORE_UNCERTAINTY_TASK = "rlhf.tasks.score_uncertainty"

S = Round.State
TRANSITIONS = {
    S.DRAFT: {S.GENERATING, S.LABELING, S.TRAINING, S.CANCELLED},
    S.GENERATING: {S.LABELING, S.FAILED, S.CANCELLED},
    S.LABELING: {S.TRAINING, S.CANCELLED},
    S.TRAINING: {S.EVALUATING, S.FAILED, S.CANCELLED},
    S.EVALUATING: {S.EVALUATED, S.FAILED, S.CANCELLED},
    S.EVALUATED: {S.DEPLOYED, S.CANCELLED},  # deploy, or discard
    S.DEPLOYED: {S.ROLLED_BACK},
    S.ROLLED_BACK: set(),
    S.FAILED: {S.TRAINING},  # retry
    S.CANCELLED: {S.TRAINING},  # retry
}
ACTIVE_STATES = {S.GENERATING, S.TRAINING, S.EVALUATING}
CANCELLABLE_STATES = {S.DRAFT, S.GENERATING, S.LABELING, S.TRAINING, S.EVALUATING}
BUSY_STATES = [S.TRAINING, S.EVALUATING, S.EVALUATED]  # one at a time per project
UNFINISHED_RUN = [TrainingRun.Status.PENDING, TrainingRun.Status.RUNNING]
LOG_TAIL_CHARS = 8000


class RoundError(RankloopError):
    """A refused round operation; the message says why, for the person who asked. As such it is
    bad settings or data for a launch (400); RoundConflict is an action the round's state refuses."""

    status = 400
    code = "invalid_round"


class RoundConflict(RoundError):
    """An action on a round (a move, cancel, retry, deploy, rollback) its state does not allow now."""

    status = 409
    code = "round_conflict"


# --- what each state shows (pages and API render only this) ------------------------------


@dataclass(frozen=True)
class StateView:
    """How a round in one state reads: its label and badge, what its progress bar measures
    ("generation", "labeling", "runs" or "none") and the actions it may offer (each still
    subject to its condition in `_offered`)."""

    label: str
    badge: str
    progress: str
    actions: tuple = ()
    poll_s: int | None = None  # the live fragment refreshes this often (None: the round is settled)
    help: str = ""


STATE_VIEWS = {
    S.DRAFT: StateView("Draft", "draft", "none", ("launch", "cancel")),
    S.GENERATING: StateView("Generating candidates", "generating", "generation", ("cancel",), poll_s=2),
    S.LABELING: StateView("Labeling", "labeling", "labeling", ("launch", "cancel"), poll_s=10),
    S.TRAINING: StateView("Training", "training", "runs", ("cancel",), poll_s=2),
    S.EVALUATING: StateView("Evaluating", "evaluating", "runs", ("cancel",), poll_s=2),
    S.EVALUATED: StateView("Evaluated", "evaluated", "runs", ("deploy", "discard"),
                           help="evaluated, awaiting a deploy decision"),
    S.DEPLOYED: StateView("Deployed", "deployed", "runs", ("rollback",), help="its policy serves the project"),
    S.ROLLED_BACK: StateView("Rolled back", "rolled_back", "runs",
                             help="deployed, then rolled back to the policy it started from"),
    S.FAILED: StateView("Failed", "failed", "runs", ("retry",)),
    S.CANCELLED: StateView("Cancelled", "cancelled", "runs", ("retry",)),
}
# A deployed round whose policy no longer serves (a later round's does, or a rollback on the
# models page put another back): it reads so, and only the live one reads "Deployed".
SUPERSEDED = StateView("Superseded", "superseded", "runs", help="deployed earlier; another policy serves now")


@dataclass(frozen=True)
class ActionView:
    name: str
    label: str
    primary: bool = False
    link: bool = False  # a link to a page (launch: the launch form), not a POST
    help: str = ""


ACTION_VIEWS = {
    "launch": ActionView("launch", "Launch training", link=True,
                         help="Train on the labels so far: reward model, policy, evaluation."),
    "cancel": ActionView("cancel", "Cancel", help="Stop the round; a running step stops at its next step."),
    "retry": ActionView("retry", "Retry", help="Run what did not finish again, from its last checkpoint."),
    "deploy": ActionView("deploy", "Deploy new policy", primary=True,
                         help="The new policy serves the project and writes the next candidates."),
    "discard": ActionView("discard", "Discard",
                          help="Keep the current policy; the round ends as cancelled (its figures stay)."),
    "rollback": ActionView("rollback", "Roll back", help="Put back the policy this round started from."),
}


@dataclass
class RoundStatus:
    """A round as the pages and the API show it, from STATE_VIEWS and its live facts."""

    view: StateView
    actions: list = field(default_factory=list)
    percent: int = 0
    text: str = ""  # what the bar measures now, e.g. "Labeling: 4/6 tasks labelled"
    next_step: str = ""  # the action a person should take now, said in words
    runs: list = field(default_factory=list)
    current: TrainingRun | None = None
    LOG_SHOWN_CHARS = 3000  # of each run's log, on the page

    @property
    def logs(self):
        """(run, the end of its log from a line start) for the runs that logged something."""
        return [(run, log_excerpt(run.log_tail, self.LOG_SHOWN_CHARS)) for run in self.runs if run.log_tail]

    @property
    def polling(self):
        return self.view.poll_s is not None


def live_policy_ids(project_ids) -> dict:
    """{project id: id of its deployed policy}, one query."""
    from models_app.models import Deployment

    return dict(Deployment.objects.filter(project_id__in=set(project_ids), is_active=True)
                .values_list("project_id", "model_version_id"))


def state_view(round: Round, live_policy_id=None) -> StateView:
    """The round's label and badge (no query: lists pass the project's live policy id)."""
    if round.state == S.DEPLOYED and round.policy_out_id != live_policy_id:
        return SUPERSEDED
    return STATE_VIEWS[Round.State(round.state)]


def round_rows(rounds) -> list[tuple[Round, StateView]]:
    """(round, its view) for a table of rounds, with two queries in all."""
    rounds = list(rounds)
    live = live_policy_ids(r.project_id for r in rounds)
    return [(r, state_view(r, live.get(r.project_id))) for r in rounds]


def round_status(round: Round) -> RoundStatus:
    """Everything a round's page and the API say about it now: label, badge, progress and its
    meaning, the actions offered and the next step."""
    live = live_policy_ids([round.project_id]).get(round.project_id)
    view = state_view(round, live)
    runs = list(round.runs.all())
    status = RoundStatus(view=view, runs=runs)
    measure = {"generation": _generation_progress, "labeling": _labeling_progress, "runs": _runs_progress}
    facts = measure[view.progress](round, status) if view.progress in measure else {}
    status.actions = [ACTION_VIEWS[name] for name in view.actions if _offered(name, round, runs, live, facts)]
    return status


def _offered(action: str, round: Round, runs, live_policy_id, facts) -> bool:
    """The condition, beside the state, under which an action means something."""
    if action == "retry":
        return any(r.status != TrainingRun.Status.SUCCEEDED for r in runs) and not any(
            r.status == TrainingRun.Status.RUNNING for r in runs)
    if action == "deploy":
        return round.policy_out_id is not None
    if action == "rollback":
        return round.policy_out_id is not None and round.policy_out_id == live_policy_id
    if action == "launch":
        return not Round.objects.filter(project_id=round.project_id, state__in=BUSY_STATES).exists()
    return True


def _generation_progress(round: Round, status: RoundStatus) -> dict:
    job = round.generation_jobs.order_by("-id").first()
    if job is not None and job.total:
        status.percent = job.percent
        status.text = f"Generating candidates: {job.done}/{job.total} prompt{'s' if job.total != 1 else ''}"
        if job.tasks_created:
            status.text += f", {job.tasks_created} comparison task{'s' if job.tasks_created != 1 else ''} so far"
    else:  # queued, or a round from before generation jobs
        from labeling.models import Candidate

        written = Candidate.objects.filter(tasks__in=round.tasks).distinct().count()
        status.text = f"Generating candidates: {written} written so far" if written else "Generating candidates: queued"
    return {}


def _labeling_progress(round: Round, status: RoundStatus) -> dict:
    from django.db.models import Count, Q, Sum

    from labeling.models import ComparisonTask

    counts = round.tasks.aggregate(
        tasks=Count("id"), labelled=Count("id", filter=~Q(status=ComparisonTask.Status.OPEN)),
        done=Sum("annotations_done"), wanted=Sum("overlap"))
    tasks, labelled = counts["tasks"], counts["labelled"]
    done, wanted = counts["done"] or 0, counts["wanted"] or 0
    status.percent = round_percent(done, wanted)
    if not tasks:
        status.text = "Labeling: the round has no comparison tasks"
        return {"all_labelled": False}
    status.text = (f"Labeling: {labelled}/{tasks} task{'s' if tasks != 1 else ''} labelled "
                   f"({done}/{wanted} annotations)")
    if labelled == tasks:
        status.next_step = f"All {tasks} tasks of this round are labelled: launch training."
    return {"all_labelled": labelled == tasks}


def _runs_progress(round: Round, status: RoundStatus) -> dict:
    runs = status.runs
    done = sum(1 for r in runs if r.status == TrainingRun.Status.SUCCEEDED)
    current = next((r for r in runs if r.status == TrainingRun.Status.RUNNING), None)
    fraction = done
    if current and current.total_steps:
        fraction += min(current.step / current.total_steps, 1.0)
    status.current = current
    status.percent = round_percent(fraction, len(runs))
    if current:
        status.text = f"{current.get_kind_display()} step {current.step}/{current.total_steps or '?'}"
    elif runs:
        status.text = f"{done}/{len(runs)} runs done"
    if status.view.help:
        status.text = f"{status.text} · {status.view.help}" if status.text else status.view.help
    if round.state == S.EVALUATED:
        status.next_step = "Deploy the new policy, or discard the round to keep the current one."
    return {}


# --- the state machine -------------------------------------------------------------------


def transition(round: Round, to_state: str, *, user=None, note: str = "") -> Round:
    """Move a round to `to_state`, recording who and when; refuse a move the machine forbids."""
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round.pk)
        if to_state not in TRANSITIONS[locked.state]:
            raise RoundConflict(
                f"Round {locked.number} is {locked.get_state_display().lower()}; "
                f"it cannot become {Round.State(to_state).label.lower()}."
            )
        RoundTransition.objects.create(
            round=locked, from_state=locked.state, to_state=to_state,
            by=user if user is not None and user.is_authenticated else None, note=note[:2000],
        )
        locked.state = to_state
        locked.save(update_fields=["state", "updated_at"])
    round.state = to_state
    return round


def fail_round(round: Round, reason: str, *, user=None) -> bool:
    """Mark a round failed with its reason (no-op if it already ended). True if it changed."""
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round.pk)
        if S.FAILED not in TRANSITIONS[locked.state]:
            return False
        Round.objects.filter(pk=locked.pk).update(error=reason)
        transition(locked, S.FAILED, user=user, note=reason)
    round.state, round.error = S.FAILED, reason
    return True


# --- launching ----------------------------------------------------------------------------


def next_round_number(project) -> int:
    return (Round.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1


def start_labeling_round(project, prompts=None, *, count=None, user=None, k=None, decoding=None) -> Round:
    """A new round whose candidates the deployed policy writes, through a GenerationJob like any
    other generation (Celery, gpu queue); it moves to labeling when the job has finished.
    Without `prompts`: the prompts the deployed policy has not answered, up to `count`.
    Refuses when no policy is deployed, no prompts are left, or the settings are bad."""
    from models_app import services as model_services

    prompts = list(prompts if prompts is not None else model_services.unanswered_prompts(project, count))
    if not prompts:
        raise RoundError("Choose at least one prompt to generate candidates for.")
    policy = model_services.deployed_policy(project)
    if policy is None:
        raise RoundError(f"No policy is deployed on {project}; deploy one before generating candidates.")
    with transaction.atomic():
        round = Round.objects.create(
            project=project, number=next_round_number(project), started_by=_user(user),
            policy_in=policy,
            hyperparameters={"generation": {"k": k, "decoding": decoding or {}}},
        )
        transition(round, S.GENERATING, user=user, note=f"{len(prompts)} prompts")
        try:
            model_services.start_generation(
                project, prompts, version=policy, round_number=round.number, k=k, decoding=decoding, user=_user(user),
                then=signature(FINISH_GENERATION_TASK, args=[round.pk], immutable=True))
        except (model_services.GenerationError, model_services.DecodingConfigError) as exc:
            raise RoundError(str(exc)) from None
    return round


def finish_generation(round: Round) -> Round:
    """After the round's generation job: open the round for labeling, or fail it with the job's
    reason. A round cancelled meanwhile stays cancelled (its candidates stay)."""
    round.refresh_from_db()
    job = round.generation_jobs.order_by("-id").first()
    if round.state != S.GENERATING or job is None or not job.is_finished:
        return round
    if job.status == job.Status.FAILED:
        fail_round(round, f"Generating candidates failed: {job.error}")
        return round
    try:
        transition(round, S.LABELING, note=f"{job.tasks_created} comparison tasks")
    except RoundError:  # cancelled at the same moment
        pass
    return round


def launch_round(project, *, user, algorithm, hyperparameters=None, data_filters=None, deploy_rule=None,
                 launcher=None, enqueue=True) -> Round:
    """Validate a round's settings and its data, then enqueue its chain of training tasks
    (enqueue=False only plans the runs, for a caller that runs them in-process: benchmarks).

    Uses the project's round in labeling if there is one (its labels are the newest), else a
    new round. Refuses with a RoundError saying what is wrong or missing."""
    from models_app.services import deployed_policy

    from . import datasets

    algorithm = (algorithm or "").lower()
    if algorithm not in Round.Algorithm.values:
        raise RoundError(f"Unknown algorithm {algorithm!r}; choose one of {', '.join(Round.Algorithm.values)}.")
    hyperparameters = round_config.validate_hyperparameters(algorithm, hyperparameters or {})
    data_filters = datasets.validate_filters(project, data_filters or {})
    deploy_rule = round_config.validate_deploy_rule(deploy_rule or {})
    launcher = round_config.validate_launcher(launcher or {})
    round_config.launcher_settings(project.launcher, launcher)  # the two together, as the runs will read them
    busy = Round.objects.filter(project=project, state__in=BUSY_STATES).first()
    if busy is not None and busy.state == S.EVALUATED:
        raise RoundError(f"Round {busy.number} of {project} is evaluated and awaits a decision; deploy or "
                         "discard it first.")
    if busy is not None:
        raise RoundError(f"Round {busy.number} of {project} is still {busy.state}; wait for it or cancel it.")
    policy = deployed_policy(project)
    if policy is None:
        raise RoundError(f"No policy is deployed on {project}; a round starts from the deployed policy.")
    datasets.check_enough_data(project, data_filters)
    with transaction.atomic():
        round = (
            Round.objects.select_for_update().filter(project=project, state=S.LABELING).order_by("-number").first()
        )
        if round is None:
            round = Round.objects.create(project=project, number=next_round_number(project), started_by=_user(user))
        round.algorithm = algorithm
        round.hyperparameters = {**hyperparameters, **(
            {"generation": round.hyperparameters["generation"]} if "generation" in round.hyperparameters else {})}
        round.data_filters = data_filters
        round.deploy_rule = deploy_rule
        round.launcher = launcher
        round.policy_in = policy
        round.started_by = round.started_by or _user(user)
        round.error = ""
        round.save()
        transition(round, S.TRAINING, user=user, note=f"{algorithm} from {policy}")
        for kind in stages(round):
            TrainingRun.objects.create(round=round, kind=kind, config=round_config.stage_config(round, kind))
        if enqueue:
            transaction.on_commit(lambda: enqueue_chain(round))
    return round


def stages(round: Round) -> list[str]:
    """The runs of a round, in order: optional SFT, the reward model, the policy, evaluation."""
    kinds = []
    if round.hyperparameters.get("sft", {}).get("enabled"):
        kinds.append(TrainingRun.Kind.SFT)
    kinds += [TrainingRun.Kind.REWARD, round.algorithm, TrainingRun.Kind.EVAL]
    return kinds


def enqueue_chain(round: Round):
    """One Celery task per unfinished run, chained on the gpu queue (by task name: this module
    never imports the tasks module); ids are kept on the runs."""
    runs = list(round.runs.filter(status=TrainingRun.Status.PENDING).order_by("id"))
    if not runs:
        return None
    signatures = [signature(RUN_TASKS.get(run.kind, RUN_TASKS["policy"]), args=[run.pk], immutable=True)
                  for run in runs]
    result = chain(*signatures).apply_async()
    node, ids = result, []
    while node is not None:
        ids.append(node.id)
        node = node.parent
    for run, celery_id in zip(runs, reversed(ids)):
        TrainingRun.objects.filter(pk=run.pk).update(celery_id=celery_id)
    return result


def queue_uncertainty_scoring(project) -> None:
    """Score the project's open tasks with its latest reward models, in the worker (gpu queue)."""
    signature(SCORE_UNCERTAINTY_TASK, args=[project.pk]).apply_async(queue="gpu")


def _user(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# --- cancel, retry -------------------------------------------------------------------------


def cancel_round(round: Round, *, user) -> Round:
    """Stop a round: pending runs are revoked, a running one stops at its next step."""
    from rankloop.celery import app

    with transaction.atomic():
        round.refresh_from_db()
        if round.state == S.EVALUATED:
            raise RoundConflict(f"Round {round.number} is evaluated; deploy it or discard it.")
        if round.state not in CANCELLABLE_STATES:
            raise RoundConflict(f"Round {round.number} is {round.state}; only an unfinished round can be cancelled.")
        unfinished = list(round.runs.filter(status__in=UNFINISHED_RUN))
        round.runs.filter(status=TrainingRun.Status.PENDING).update(
            status=TrainingRun.Status.CANCELLED, finished_at=timezone.now(), cancel_requested=True)
        round.runs.filter(status=TrainingRun.Status.RUNNING).update(cancel_requested=True)
        # A generation job not started yet never starts (one running finishes its batch).
        round.generation_jobs.filter(status="queued").update(
            status="failed", error=f"Cancelled with round {round.number}.", finished_at=timezone.now())
        transition(round, S.CANCELLED, user=user, note="cancelled")
    # Revoking only spares a worker the start: a cancelled run is never claimed anyway, so a
    # broker that cannot broadcast (the embedded filesystem one) changes nothing.
    pending_ids = [r.celery_id for r in unfinished if r.celery_id and r.status == TrainingRun.Status.PENDING]
    if pending_ids:
        try:
            app.control.revoke(pending_ids)
        except Exception:  # noqa: BLE001
            logger.warning("could not revoke %s", pending_ids, exc_info=True)
    return round


def discard_round(round: Round, *, user) -> Round:
    """An evaluated round whose policy is not wanted: it ends as cancelled, its figures kept,
    and the project's policy stays as it is."""
    round.refresh_from_db()
    if round.state != S.EVALUATED:
        raise RoundConflict(f"Round {round.number} is {round.state}; only an evaluated round can be discarded.")
    transition(round, S.CANCELLED, user=user, note="discarded: the new policy was not deployed")
    return round


def retry_round(round: Round, *, user) -> Round:
    """Run a failed or cancelled round again from where it stopped: finished runs are kept,
    the rest start over, resuming from their last checkpoint where there is one."""
    from . import datasets

    round.refresh_from_db()
    if round.state not in (S.FAILED, S.CANCELLED):
        raise RoundConflict(f"Round {round.number} is {round.state}; only a failed or cancelled round can be retried.")
    if not round.runs.exists():
        raise RoundConflict(f"Round {round.number} never trained; launch it instead.")
    if round.runs.filter(status=TrainingRun.Status.RUNNING).exists():
        raise RoundConflict("A run of this round is still stopping; retry in a moment.")
    if not round.runs.exclude(status=TrainingRun.Status.SUCCEEDED).exists():
        raise RoundConflict(f"Every run of round {round.number} finished; nothing is left to retry. "
                            "Launch a new round instead.")
    try:
        datasets.check_enough_data(round.project, round.data_filters)
    except RoundError as exc:  # the data changed since the launch: this round cannot go on as it is
        raise RoundConflict(exc.message) from exc
    with transaction.atomic():
        for run in round.runs.exclude(status=TrainingRun.Status.SUCCEEDED):
            run.status = TrainingRun.Status.PENDING
            run.cancel_requested = False
            run.error = ""
            run.finished_at = None
            run.log_tail = _tail(run.log_tail + f"\n--- retried by {user or 'system'} at {timezone.now():%H:%M:%S}\n")
            run.save(update_fields=["status", "cancel_requested", "error", "finished_at", "log_tail"])
        Round.objects.filter(pk=round.pk).update(error="")
        transition(round, S.TRAINING, user=user, note="retry")
        transaction.on_commit(lambda: enqueue_chain(round))
    return round


# --- deploy and rollback -------------------------------------------------------------------


def deploy_round(round: Round, *, user, note: str = "") -> Round:
    """Deploy the round's new policy on its project; the next generation uses it."""
    round.refresh_from_db()
    if round.state == S.EVALUATING:
        raise RoundConflict(f"Round {round.number} is still being evaluated; deploy it when the evaluation is done.")
    if round.state != S.EVALUATED or round.policy_out is None:
        raise RoundConflict(f"Round {round.number} is {round.state}; only an evaluated round with a new policy "
                            "can be deployed.")
    return _deploy(round, user=user, note=note)


def _deploy(round: Round, *, user, note: str) -> Round:
    from models_app import services as model_services

    with transaction.atomic():
        try:
            model_services.deploy(round.project, round.policy_out, user=_user(user),
                                  note=note or f"round {round.number}")
        except model_services.ModelRegistryError as exc:  # a RoundError, for the deploy rule's record
            raise RoundConflict(exc.message) from exc
        transition(round, S.DEPLOYED, user=user, note=note or "deployed")
    return round


def rollback_round(round: Round, *, user) -> Round:
    """Put back the policy the round started from, when the round's policy is the one serving;
    the round reads "rolled back" from then on."""
    from models_app import services as model_services

    round.refresh_from_db()
    if round.state != S.DEPLOYED:
        raise RoundConflict(f"Round {round.number} is {round.state}; only a deployed round can be rolled back.")
    active = model_services.deployed_policy(round.project)
    if active is None or active.pk != round.policy_out_id:
        raise RoundConflict(f"Round {round.number}'s policy is no longer the deployed one; nothing to roll back.")
    with transaction.atomic():
        try:
            model_services.rollback(round.project, user=_user(user), to=round.policy_in)
        except model_services.ModelRegistryError as exc:  # a RoundError, as the round's pages expect
            raise RoundConflict(exc.message) from exc
        transition(round, S.ROLLED_BACK, user=user, note=f"rolled back to {round.policy_in}")
    return round


def finish_evaluation(round: Round) -> bool:
    """The evaluation's figures are stored: the round is evaluated, then its deploy rule decides
    (before the run reads as finished, so nobody acts on a round about to deploy itself).
    True when it deployed."""
    try:
        transition(round, S.EVALUATED, note="evaluation done")
    except RoundError:  # cancelled meanwhile: it stays so
        return False
    return apply_deploy_rule(round)


def apply_deploy_rule(round: Round) -> bool:
    """Deploy automatically when the round's rule holds on its evaluation metrics (called by the
    evaluation once its metrics are stored)."""
    holds, reason = round_config.deploy_rule_holds(round.deploy_rule, round.metrics)
    if not holds:
        if reason:
            RoundTransition.objects.create(round=round, from_state=round.state, to_state=round.state,
                                           note=f"not deployed automatically: {reason}")
        return False
    try:
        _deploy(round, user=None, note=f"auto-deploy: {reason}")
    except RoundError as exc:  # the round stays evaluated; an admin can deploy or not
        RoundTransition.objects.create(round=round, from_state=round.state, to_state=round.state,
                                       note=f"automatic deploy refused: {exc}")
        return False
    return True


# --- training runs: progress, metrics, heartbeat --------------------------------------------


def start_run(run: TrainingRun, *, celery_id: str = "") -> bool:
    """Claim a pending run for this worker. False when it should not run (cancelled, failed by
    the reaper, finished, or its round is no longer training)."""
    now = timezone.now()
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update(of=("self",)).select_related("round").get(pk=run.pk)
        if locked.status != TrainingRun.Status.PENDING or locked.cancel_requested:
            return False
        if locked.round and locked.round.state not in (S.TRAINING, S.EVALUATING):
            return False
        fields = {"status": TrainingRun.Status.RUNNING, "started_at": now, "heartbeat_at": now, "error": ""}
        if celery_id:
            fields["celery_id"] = celery_id
        TrainingRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    return True


def record_run_folder(run: TrainingRun, path: str) -> None:
    """Where the run's files, checkpoints and output live (kept on retry)."""
    TrainingRun.objects.filter(pk=run.pk).update(checkpoint_dir=path)
    run.checkpoint_dir = path


def record_command(run_id: int, command: str) -> None:
    """The exact command line a stage was launched with (also the run folder's command.sh)."""
    TrainingRun.objects.filter(pk=run_id).update(command=command)


def run_should_stop(run_id: int) -> bool:
    """A cancel was asked for, or the run is no longer running here (the reaper failed it)."""
    row = TrainingRun.objects.filter(pk=run_id).values_list("status", "cancel_requested").first()
    return row is None or row[1] or row[0] != TrainingRun.Status.RUNNING


def heartbeat(run_id: int) -> None:
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(heartbeat_at=timezone.now())


def record_progress(run_id: int, *, step: int, total: int | None = None) -> bool:
    """Step of total and heartbeat; returns True when a cancel was asked for."""
    fields = {"step": step, "heartbeat_at": timezone.now()}
    if total:
        fields["total_steps"] = total
    TrainingRun.objects.filter(pk=run_id).update(**fields)
    return TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()


def record_metrics(run_id: int, step: int, values: dict) -> None:
    points = [MetricPoint(run_id=run_id, step=step, name=str(name)[:100], value=float(value))
              for name, value in values.items()
              if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value]
    MetricPoint.objects.bulk_create(points)


def append_log(run_id: int, text: str) -> None:
    """Append to the run's log, keeping its last LOG_TAIL_CHARS, trimmed at a line boundary (a
    line is never shown cut): one UPDATE, so it costs a training step little."""
    joined = Concat(F("log_tail"), Value(text[-LOG_TAIL_CHARS:]))
    # One character more than is kept: when it is the newline ending the line before, the cut
    # already falls on a boundary and nothing more is dropped.
    over = Right(joined, LOG_TAIL_CHARS + 1)
    newline = StrIndex(over, Value("\n"))
    TrainingRun.objects.filter(pk=run_id).update(log_tail=Case(
        When(LessThanOrEqual(Length(joined), LOG_TAIL_CHARS), then=joined),
        When(Exact(newline, 0), then=Right(joined, LOG_TAIL_CHARS)),  # one endless line: cut it
        default=Substr(over, newline + 1), output_field=TextField()))


def log_excerpt(text: str, chars: int) -> str:
    """The last `chars` of a log, from the start of a line (the cut line is left out whole)."""
    if len(text) <= chars:
        return text
    over = text[-chars - 1:]
    newline = over.find("\n")
    return over[newline + 1:] if newline >= 0 else text[-chars:]


def _tail(text: str) -> str:
    return log_excerpt(text, LOG_TAIL_CHARS)


def finish_run(run: TrainingRun, status: str, *, error: str = "") -> None:
    """A run ends: succeeded, cancelled or failed (then its round fails with the reason)."""
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
        status=status, error=error[:5000], finished_at=timezone.now())
    if status == TrainingRun.Status.FAILED and run.round_id:
        fail_round(run.round, f"{run.get_kind_display()} run {run.pk} failed: {error}")


def record_run_output(run: TrainingRun, version) -> None:
    """The model version a run produced (a retried run's new version replaces the old link)."""
    TrainingRun.objects.filter(pk=run.pk).update(output=version)


def set_round_outputs(round: Round, **fields) -> None:
    """policy_out / reward_model / metrics, written by the runs of the round."""
    Round.objects.filter(pk=round.pk).update(**fields, updated_at=timezone.now())
    for name, value in fields.items():
        setattr(round, name, value)


def merge_round_metrics(round: Round, values: dict) -> None:
    values = {name: measured(value) for name, value in values.items()}
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round.pk)
        locked.metrics = {**locked.metrics, **values}
        locked.save(update_fields=["metrics", "updated_at"])
    round.metrics = locked.metrics


def reap_lost_runs(*, now=None, timeout_s: int | None = None) -> int:
    """Periodic (beat): runs whose worker stopped sending heartbeats are failed with the
    reason, and so are their rounds, so that no round stays in training."""
    now = now or timezone.now()
    timeout_s = timeout_s or settings.RLHF_HEARTBEAT_TIMEOUT_S
    cutoff = now - timedelta(seconds=timeout_s)
    lost = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    count = 0
    for run in lost.select_related("round"):
        reason = (f"The worker stopped sending heartbeats (last at {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC, "
                  f"over {timeout_s} s ago): it probably died or lost its connection. Retry the round to resume.")
        updated = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
            status=TrainingRun.Status.FAILED, error=reason, finished_at=now)
        if updated:
            count += 1
            if run.round_id:
                fail_round(run.round, f"{run.get_kind_display()} run {run.pk} lost: {reason}")
                run.round.runs.filter(status=TrainingRun.Status.PENDING).update(
                    status=TrainingRun.Status.CANCELLED, finished_at=now)
    return count


def round_percent(fraction, total):
    return int(100 * fraction / total) if total else 0


NOT_MEASURED = "not measured"


def measured(value):
    """A figure, or None when it was measured on nothing (None, NaN, infinite): JSON (and
    Postgres' jsonb) has no NaN, and a figure of nothing must not read as a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def shown_metric(value) -> str:
    if measured(value) is None:
        return NOT_MEASURED
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def metrics_table(round: Round) -> list[tuple[str, str]]:
    """The round's flat metrics as (name, shown value) rows: rates and rewards to 4 places (the
    evaluation's intervals are shown apart, by rlhf.evaluation.report)."""
    return [(name.replace("_", " "), shown_metric(value)) for name, value in round.metrics.items()
            if not isinstance(value, (dict, list))]


def settings_used(round: Round) -> list[dict]:
    """Per run of the round, the settings it trained with (recorded at launch: the defaults of
    rlhf/config.py overlaid with the round's own), each marked "round" when the round set it,
    and the command line it ran."""
    rows = []
    for run in round.runs.order_by("pk"):
        section = "policy" if run.kind in Round.Algorithm.values else run.kind
        own = {**round.hyperparameters.get(section, {}), **(
            {"seed": round.hyperparameters["seed"]} if "seed" in round.hyperparameters else {})}
        rows.append({"run": run, "command": run.command, "settings": [
            (name, shown_setting(value), "round" if name in own else "default")
            for name, value in sorted(run.config.items())]})
    return rows


def shown_setting(value) -> str:
    """A setting as the round page shows it: numbers as given (1e-4, not 0.0001), lists joined."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "—"}[value]
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


CHARTS = [("loss", "Loss"), ("reward", "Reward"), ("kl", "KL"), ("accuracy", "Accuracy")]


def chart_notes(round: Round) -> dict:
    """{chart group: why it stays empty for this round's algorithm, and what it logs instead}."""
    notes = {}
    if round.algorithm == Round.Algorithm.DPO:
        notes["kl"] = ("DPO logs no KL while it trains: its β keeps the policy near the reference implicitly. "
                       "It logs rewards/chosen, rewards/rejected and rewards/margins (Reward chart) and "
                       "rewards/accuracies (Accuracy chart); the evaluation's KL to the old policy is in the "
                       "table below.")
    elif round.algorithm in (Round.Algorithm.GRPO, Round.Algorithm.RLOO):
        beta = round_config.stage_settings(round, round.algorithm).get("beta")
        if not beta:
            notes["kl"] = (f"{round.get_algorithm_display()} logs kl only when beta > 0 (this round: beta "
                           f"{beta}); the evaluation's KL to the old policy is in the table below.")
    return notes


def charts(round: Round) -> list[tuple[str, str, str]]:
    """(group, title, note) of the round page's charts."""
    notes = chart_notes(round)
    return [(group, title, notes.get(group, "")) for group, title in CHARTS]


def metric_series(round: Round) -> dict:
    """{run label: {metric name: [[step, value], ...]}} for the charts (training runs)."""
    series = {}
    # The evaluation's figures are one point each: they are the round's metrics table, not a curve.
    rows = (MetricPoint.objects.filter(run__round=round).exclude(run__kind=TrainingRun.Kind.EVAL)
            .order_by("run_id", "step", "id")
            .values_list("run_id", "run__kind", "name", "step", "value"))
    for run_id, kind, name, step, value in rows:
        series.setdefault(f"{kind} #{run_id}", {}).setdefault(name, []).append([step, value])
    return series

