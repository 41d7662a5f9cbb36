from django.core.management.base import BaseCommand

from labeling.demo import load_demo
from labeling.demo.data import PROMPTS
from labeling.models import Project


class Command(BaseCommand):
    help = "Create the demo users, projects and tasks (idempotent: a re-run adds nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true",
                            help="Write the candidates with the default model (make demo does); hand-written answers "
                                 "stay the fallback. Also on with RANKLOOP_DEMO_GENERATE=1.")

    def handle(self, *args, **options):
        from models_app.demo import demo_generator, deploy_default_on, generation_requested

        generating = generation_requested(options["generate"])
        generate = demo_generator(PROMPTS, log=self.stdout.write) if generating else None
        summary = load_demo(generate=generate)
        if generating:
            deploy_default_on(Project.objects.filter(prompts__external_id__startswith="demo:").distinct(),
                              log=self.stdout.write)
        if not summary.changed:
            self.stdout.write("Demo data already loaded; nothing added.")
            return
        self.stdout.write(self.style.SUCCESS(
            f"Demo loaded: {len(summary.users_created)} users, {len(summary.projects_created)} projects, "
            f"{summary.prompts_created} prompts, {summary.tasks_created} tasks."
        ))
