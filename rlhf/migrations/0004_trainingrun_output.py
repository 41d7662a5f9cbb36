# The link between a run and the model version it produced now points down the app order (rlhf
# -> models_app): TrainingRun.output replaces ModelVersion.training_run (models_app 0007 drops it).
import django.db.models.deletion
from django.db import migrations, models


def copy_links(apps, schema_editor):
    ModelVersion = apps.get_model("models_app", "ModelVersion")
    TrainingRun = apps.get_model("rlhf", "TrainingRun")
    # One version per run: a run that registered several (none should) keeps its latest.
    latest = dict(ModelVersion.objects.exclude(training_run=None).order_by("id").values_list("training_run_id", "id"))
    for run_id, version_id in latest.items():
        TrainingRun.objects.filter(pk=run_id).update(output_id=version_id)


class Migration(migrations.Migration):

    dependencies = [
        ("models_app", "0006_generation_job_k"),
        ("rlhf", "0003_launcher_settings"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="output",
            field=models.OneToOneField(blank=True, help_text="The model version this run produced.", null=True,
                                       on_delete=django.db.models.deletion.SET_NULL, related_name="trained_by",
                                       to="models_app.modelversion"),
        ),
        # Backwards, models_app 0007 (unapplied first) has already copied the links back.
        migrations.RunPython(copy_links, migrations.RunPython.noop),
    ]
