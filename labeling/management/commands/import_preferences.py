"""manage.py import_preferences PROJECT FILE --source NAME [--limit N]: the API's preference
import (labeling.preference_import), from a file on disk (.jsonl or .jsonl.gz)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling import preference_import
from labeling.errors import LabelingError
from labeling.models import Project


class Command(BaseCommand):
    help = ("Import existing preference data (TRL preference JSON Lines: standard, conversational or implicit "
            "prompt; gzip allowed) as labelled pairs with the source import:NAME. All or nothing; a re-import "
            "adds nothing.")

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project slug")
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", help="The data's name, e.g. hh-rlhf (default: the file's name); the pairs' "
                            "source is import:NAME")
        parser.add_argument("--limit", type=int, help="Import the first N lines only")

    def handle(self, *args, project, file, source=None, limit=None, **options):
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {project!r}.") from None
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        try:
            report = preference_import.import_preferences(target, data, source=source, filename=file.name,
                                                          limit=limit)
        except LabelingError as exc:
            lines = [exc.message] + [f"  line {e['line']}, {e['field'] or '(line)'}: {e['message']}"
                                     for e in (exc.errors if isinstance(exc.errors, list) else [])]
            raise CommandError("\n".join(lines)) from exc
        duplicates = (f", {report.duplicate_lines_skipped} duplicate lines skipped"
                      if report.duplicate_lines_skipped else "")
        self.stdout.write(
            f"{report.pairs_created} pairs imported as {report.source}, {report.pairs_skipped_existing} skipped "
            f"(already imported){duplicates}; {report.prompts_created} prompts created, {report.prompts_matched} "
            f"matched; {report.candidates_created} candidates.")
