# Each generation job's round number, from the round its key named (and back).
from django.db import migrations


def numbers_from_rounds(apps, schema_editor):
    GenerationJob = apps.get_model("models_app", "GenerationJob")
    for round_id, number in GenerationJob.objects.exclude(round=None).values_list("round_id", "round__number"):
        GenerationJob.objects.filter(round_id=round_id).update(round_number=number)


def rounds_from_numbers(apps, schema_editor):
    Round = apps.get_model("rlhf", "Round")
    GenerationJob = apps.get_model("models_app", "GenerationJob")
    for round in Round.objects.all():
        GenerationJob.objects.filter(project_id=round.project_id, round_number=round.number).update(round_id=round.pk)


class Migration(migrations.Migration):

    dependencies = [
        ("models_app", "0008_generationjob_round_number"),
    ]

    operations = [
        migrations.RunPython(numbers_from_rounds, rounds_from_numbers),
    ]
