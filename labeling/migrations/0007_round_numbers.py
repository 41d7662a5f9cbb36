# Tasks and pairs keep the number of the rlhf round they belong to instead of a foreign key to it
# (labeling sits below rlhf in the app order). 0008 copies each number from the round it named,
# 0009 drops the keys: three transactions, as Postgres will not alter a table while the deferred
# key checks of rows just updated are pending.
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0006_launcher_and_judge"),
        ("rlhf", "0004_trainingrun_output"),
    ]

    operations = [
        migrations.AddField(
            model_name="comparisontask",
            name="round_number",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="preferencepair",
            name="round_number",
            field=models.PositiveIntegerField(blank=True, help_text="Its task's round number.", null=True),
        ),
    ]
