# The project's judge moves from labeling.Project.judge (a key up the app order) to
# models_app.ProjectJudge; labeling 0010 then drops the old column.
import django.db.models.deletion
from django.db import migrations, models


def copy_judges(apps, schema_editor):
    Project = apps.get_model("labeling", "Project")
    ProjectJudge = apps.get_model("models_app", "ProjectJudge")
    ProjectJudge.objects.bulk_create([ProjectJudge(project_id=pk, model_version_id=judge_id) for pk, judge_id in
                                      Project.objects.filter(judge__isnull=False).values_list("pk", "judge_id")])


def copy_judges_back(apps, schema_editor):
    Project = apps.get_model("labeling", "Project")
    ProjectJudge = apps.get_model("models_app", "ProjectJudge")
    for project_id, version_id in ProjectJudge.objects.values_list("project_id", "model_version_id"):
        Project.objects.filter(pk=project_id).update(judge_id=version_id)


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0009_remove_round_keys"),
        ("models_app", "0010_remove_generationjob_round"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProjectJudge",
            fields=[
                ("project", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                 related_name="judge_choice", serialize=False,
                                                 to="labeling.project")),
                ("model_version", models.ForeignKey(help_text="A reward model version.",
                                                    on_delete=django.db.models.deletion.CASCADE,
                                                    related_name="judge_choices", to="models_app.modelversion")),
            ],
        ),
        migrations.RunPython(copy_judges, copy_judges_back),
    ]
