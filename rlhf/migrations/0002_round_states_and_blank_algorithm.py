"""Round states `evaluated` (the evaluation is done, a deploy decision is due) and `rolled_back`;
a round's algorithm is blank until training is launched (existing rows keep theirs)."""
from django.db import migrations, models


def name_the_settled_states(apps, schema_editor):
    """Rounds that were already evaluated or rolled back read so (they were `evaluating` with a
    finished evaluation, or `deployed` with a rollback in their history)."""
    Round = apps.get_model("rlhf", "Round")
    RoundTransition = apps.get_model("rlhf", "RoundTransition")
    evaluated = Round.objects.filter(state="evaluating", runs__kind="eval", runs__status="succeeded").exclude(
        runs__status__in=["pending", "running"])
    for round in evaluated.distinct():
        RoundTransition.objects.create(round=round, from_state="evaluating", to_state="evaluated",
                                       note="evaluation done (named by migration 0002)")
        Round.objects.filter(pk=round.pk).update(state="evaluated")
    rolled_back = Round.objects.filter(state="deployed", transitions__from_state="deployed",
                                       transitions__to_state="deployed",
                                       transitions__note__startswith="rolled back to")
    for round in rolled_back.distinct():
        RoundTransition.objects.create(round=round, from_state="deployed", to_state="rolled_back",
                                       note="rolled back (named by migration 0002)")
        Round.objects.filter(pk=round.pk).update(state="rolled_back")


class Migration(migrations.Migration):

    dependencies = [
        ('rlhf', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='round',
            name='algorithm',
            field=models.CharField(blank=True, choices=[('ppo', 'PPO'), ('grpo', 'GRPO'), ('rloo', 'RLOO'), ('dpo', 'DPO')], default='', max_length=8),
        ),
        migrations.AlterField(
            model_name='round',
            name='state',
            field=models.CharField(choices=[('draft', 'Draft'), ('generating', 'Generating'), ('labeling', 'Labeling'), ('training', 'Training'), ('evaluating', 'Evaluating'), ('evaluated', 'Evaluated'), ('deployed', 'Deployed'), ('rolled_back', 'Rolled back'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='draft', max_length=12),
        ),
        migrations.RunPython(name_the_settled_states, migrations.RunPython.noop),
    ]
