# A generation job keeps the number of the rlhf round it writes for instead of a foreign key to
# it (models_app sits below rlhf in the app order); 0009 copies the numbers, 0010 drops the key
# (three transactions: see labeling 0007).
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("models_app", "0007_modelversion_origin"),
        ("rlhf", "0004_trainingrun_output"),
    ]

    operations = [
        migrations.AddField(
            model_name="generationjob",
            name="round_number",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
