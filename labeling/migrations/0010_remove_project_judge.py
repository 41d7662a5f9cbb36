# After models_app 0011 copied each project's judge into models_app.ProjectJudge.
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0009_remove_round_keys"),
        ("models_app", "0011_projectjudge"),
    ]

    operations = [
        migrations.RemoveField(model_name="project", name="judge"),
    ]
