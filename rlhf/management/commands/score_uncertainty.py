"""manage.py score_uncertainty SLUG: score the project's open tasks with its latest reward model now
(the queue serves what it is least sure of first when the project's queue order is uncertainty)."""
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from rlhf import uncertainty


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, slug, **options):
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"No project {slug!r}.")
        try:
            scored = uncertainty.score_open_tasks(project)
        except (uncertainty.NoRewardModel, RuntimeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{scored} open tasks scored")
