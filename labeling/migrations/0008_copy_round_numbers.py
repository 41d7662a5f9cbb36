# Each task's and pair's round number, from the round its key named (and back).
from django.db import migrations


def numbers_from_rounds(apps, schema_editor):
    for name in ("ComparisonTask", "PreferencePair"):
        model = apps.get_model("labeling", name)
        for round_id, number in model.objects.exclude(round=None).values_list("round_id", "round__number").distinct():
            model.objects.filter(round_id=round_id).update(round_number=number)


def rounds_from_numbers(apps, schema_editor):
    Round = apps.get_model("rlhf", "Round")
    rounds = {(r.project_id, r.number): r.pk for r in Round.objects.all()}
    for name in ("ComparisonTask", "PreferencePair"):
        model = apps.get_model("labeling", name)
        for project_id, number in model.objects.exclude(round_number=None).values_list(
                "project_id", "round_number").distinct():
            model.objects.filter(project_id=project_id, round_number=number).update(
                round_id=rounds.get((project_id, number)))


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0007_round_numbers"),
        ("rlhf", "0004_trainingrun_output"),
    ]

    operations = [
        migrations.RunPython(numbers_from_rounds, rounds_from_numbers),
    ]
