"""manage.py export_preferences --project SLUG --format standard|conversational|raw: the API's
streamed export, to a file or standard output."""
import sys

from django.core.management.base import BaseCommand, CommandError

from labeling import exporting
from labeling.errors import LabelingError
from labeling.models import Project
from labeling.pair_filters import PairFilters


class Command(BaseCommand):
    help = "Export a project's preference data as JSON Lines (TRL standard or conversational, or raw)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("--format", default="standard", choices=exporting.FORMATS)
        parser.add_argument("--output", "-o", help="File to write (default: standard output)")
        parser.add_argument("--rounds", help="Round numbers, comma-separated")
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument("--ties", choices=["include", "exclude"], default="exclude")
        parser.add_argument("--gold", choices=["include", "exclude"], default="exclude")
        parser.add_argument("--split", choices=["train", "heldout"])
        parser.add_argument("--source", action="append", help='Only pairs from this source ("labels", '
                            '"import:NAME"); repeat or comma-separate for several')

    def handle(self, *args, project, format, output=None, **options):
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {project!r}.") from None
        try:
            filters = PairFilters.from_params(options)
        except LabelingError as exc:
            raise CommandError(exc.message) from exc
        out = open(output, "wb") if output else sys.stdout.buffer
        try:
            for chunk in exporting.export_lines(target, format, filters):
                out.write(chunk)
        finally:
            if output:
                out.close()
            else:
                out.flush()
