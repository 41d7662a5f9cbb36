from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from models_app import services
from models_app.models import ModelVersion


class Command(BaseCommand):
    help = "Register a local Hugging Face model directory (checked to load) as a model version."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--name", help="Defaults to the directory name.")
        parser.add_argument("--kind", choices=ModelVersion.Kind.values, default="policy")
        parser.add_argument("--parent", help="Name of the parent version (required for --adapter).")
        parser.add_argument("--adapter", action="store_true", help="The directory is a LoRA adapter over --parent.")
        parser.add_argument("--deploy", metavar="PROJECT_SLUG", help="Also deploy it on this project.")
        parser.add_argument("--user", help="Username recorded as the creator.")

    def handle(self, *args, **options):
        parent = None
        if options["parent"]:
            parent = ModelVersion.objects.filter(name=options["parent"]).first()
            if parent is None:
                raise CommandError(f"No model version named {options['parent']!r}.")
        user = get_user_model().objects.filter(username=options["user"]).first() if options["user"] else None
        try:
            version = services.register_model(
                options["path"], kind=options["kind"], name=options["name"], parent=parent,
                is_adapter=options["adapter"], user=user,
            )
            if options["deploy"]:
                project = Project.objects.filter(slug=options["deploy"]).first()
                if project is None:
                    raise CommandError(f"No project with slug {options['deploy']!r}.")
                services.deploy(project, version, user=user, note="manage.py register_model")
        except services.ModelRegistryError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Registered {version.kind} {version.name} (id {version.pk}) at {version.artifact_dir}"))
