from django.core.management.base import BaseCommand

from labeling.demo import load_demo


class Command(BaseCommand):
    help = "Create the demo users, projects and tasks (idempotent: a re-run adds nothing)."

    def handle(self, *args, **options):
        summary = load_demo()
        if not summary.changed:
            self.stdout.write("Demo data already loaded; nothing added.")
            return
        self.stdout.write(self.style.SUCCESS(
            f"Demo loaded: {len(summary.users_created)} users, {len(summary.projects_created)} projects, "
            f"{summary.prompts_created} prompts, {summary.tasks_created} tasks."
        ))
