# After 0009 copied the round numbers (see 0008).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("models_app", "0009_copy_generationjob_round_numbers"),
    ]

    operations = [
        migrations.RemoveField(model_name="generationjob", name="round"),
    ]
