from django.core.management.base import BaseCommand

from labeling.demo import load_demo
from models_app.demo import generation_requested, queue_demo_generation


class Command(BaseCommand):
    help = "Create the demo users, projects and tasks (idempotent: a re-run adds nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true",
                            help="Also queue the default model's answers to the demo prompts for a Celery worker "
                                 "(make demo does): they become more tasks beside the hand-written ones. "
                                 "Nothing is generated in this process. Also on with RANKLOOP_DEMO_GENERATE=1.")

    def handle(self, *args, **options):
        summary = load_demo()
        if summary.changed:
            self.stdout.write(self.style.SUCCESS(
                f"Demo loaded: {len(summary.users_created)} users, {len(summary.projects_created)} projects, "
                f"{summary.prompts_created} prompts, {summary.tasks_created} tasks with hand-written answers."
            ))
        else:
            self.stdout.write("Demo data already loaded; nothing added.")
        if generation_requested(options["generate"]):
            queue_demo_generation(log=self.stdout.write)
