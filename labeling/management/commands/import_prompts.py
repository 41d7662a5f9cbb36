"""manage.py import_prompts FILE --project SLUG: the API's import, from a file on disk."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling import importing
from labeling.errors import LabelingError
from labeling.models import Project


class Command(BaseCommand):
    help = "Import prompts (and external candidates) from a JSON Lines or CSV file. All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="Default: from the file name")
        parser.add_argument("--priority", type=int, help="Priority of the new tasks whose line gives none "
                            "(higher is served first; default 0)")

    def handle(self, *args, file, project, format=None, priority=None, **options):
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {project!r}.") from None
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        try:
            report = importing.import_prompts(target, data, fmt=format, filename=file.name, source=f"file {file.name}",
                                              priority=priority)
        except LabelingError as exc:
            lines = [exc.message] + [f"  line {e['line']}, {e['field'] or '(line)'}: {e['message']}"
                                     for e in (exc.errors if isinstance(exc.errors, list) else [])]
            raise CommandError("\n".join(lines)) from exc
        self.stdout.write(
            f"{report.prompts_created} prompts created, {report.prompts_skipped} skipped (already imported), "
            f"{report.candidates_created} candidates, {report.tasks_created} comparison tasks.")
