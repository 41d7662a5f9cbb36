# ModelVersion.training_run pointed up the app order (models_app -> rlhf); rlhf 0004 copied each
# link to TrainingRun.output. The version keeps what produced it in words, in `origin`.
from django.db import migrations, models


def describe_origins(apps, schema_editor):
    ModelVersion = apps.get_model("models_app", "ModelVersion")
    for version in ModelVersion.objects.exclude(training_run=None).select_related("training_run__round"):
        run = version.training_run
        words = f"{run.get_kind_display()} run {run.pk}"
        if run.round_id:
            words = f"round {run.round.number}, {words}"
        ModelVersion.objects.filter(pk=version.pk).update(origin=words[:200])


def restore_links(apps, schema_editor):
    ModelVersion = apps.get_model("models_app", "ModelVersion")
    TrainingRun = apps.get_model("rlhf", "TrainingRun")
    for run_id, version_id in TrainingRun.objects.exclude(output=None).values_list("id", "output_id"):
        ModelVersion.objects.filter(pk=version_id).update(training_run_id=run_id)


class Migration(migrations.Migration):

    dependencies = [
        ("models_app", "0006_generation_job_k"),
        ("rlhf", "0004_trainingrun_output"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="origin",
            field=models.CharField(blank=True, help_text='e.g. "round 3, DPO run 17"; empty for a registered directory.',
                                   max_length=200),
        ),
        migrations.RunPython(describe_origins, restore_links),
        migrations.RemoveField(model_name="modelversion", name="training_run"),
    ]
