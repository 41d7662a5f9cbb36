"""manage.py launch_round PROJECT --algorithm ppo|grpo|rloo|dpo [--hp JSON] [--filters JSON]
[--deploy-rule JSON] [--wait]"""
import json
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from rlhf import services
from rlhf.models import Round


def _json(text, what):
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise CommandError(f"--{what} is not valid JSON: {exc}") from exc
    return value


class Command(BaseCommand):
    help = "Launch a training round on a project's collected preferences (reward model, policy, evaluation)."

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project slug or name.")
        parser.add_argument("--algorithm", required=True, choices=Round.Algorithm.values)
        parser.add_argument("--hp", default="", help='Hyper-parameters, e.g. \'{"policy": {"max_steps": 10}}\'.')
        parser.add_argument("--filters", default="", help='Data filters, e.g. \'{"min_agreement": 0.6}\'.')
        parser.add_argument("--deploy-rule", default="", help='e.g. \'{"min_win_rate": 0.55}\'; empty: by hand.')
        parser.add_argument("--launcher", default="",
                            help='accelerate settings over the project\'s, e.g. \'{"num_processes": 2}\'.')
        parser.add_argument("--user", default="", help="Username recorded as the launcher.")
        parser.add_argument("--wait", action="store_true", help="Wait for the round and print its progress.")
        parser.add_argument("--timeout", type=float, default=0, help="With --wait: give up after this many seconds.")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first() or Project.objects.filter(
            name=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
        try:
            round = services.launch_round(
                project, user=user, algorithm=options["algorithm"], hyperparameters=_json(options["hp"], "hp"),
                data_filters=_json(options["filters"], "filters"),
                deploy_rule=_json(options["deploy_rule"], "deploy-rule"),
                launcher=_json(options["launcher"], "launcher"),
            )
        except services.RoundError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Round {round.number} of {project} launched ({round.algorithm}); id {round.pk}.")
        if options["wait"]:
            self._wait(round, options["timeout"])

    def _wait(self, round, timeout):
        began, last = time.monotonic(), None
        while True:
            round.refresh_from_db()
            status = services.round_status(round)
            line = f"[{status.percent:3d}%] {round.state}"
            if status.current:
                line += f" · {status.current.get_kind_display()} step {status.current.step}/" \
                        f"{status.current.total_steps or '?'}"
            if line != last:
                self.stdout.write(line)
                last = line
            if not status.polling or round.state == Round.State.LABELING:
                break
            if timeout and time.monotonic() - began > timeout:
                raise CommandError(f"Gave up waiting after {timeout:.0f} s; the round goes on.")
            time.sleep(1)
        for name, value in sorted(round.metrics.items()):
            if isinstance(value, (dict, list)):  # the evaluation's whole output: the API and page show it
                continue
            self.stdout.write(f"  {name}: {services.shown_metric(value)}")
        if round.state == Round.State.FAILED:
            raise CommandError(f"Round {round.number} failed: {round.error}")
        self.stdout.write(f"Round {round.number}: {round.state}"
                          + (" (awaiting a deploy decision)" if round.state == Round.State.EVALUATED else ""))
