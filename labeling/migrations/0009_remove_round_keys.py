# After 0008 copied the round numbers (see 0007).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0008_copy_round_numbers"),
    ]

    operations = [
        migrations.RemoveField(model_name="comparisontask", name="round"),
        migrations.RemoveField(model_name="preferencepair", name="round"),
    ]
