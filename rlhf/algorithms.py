"""How a round optimizes the policy: the one list of algorithms (rounds, runs, forms, API,
hyper-parameter sections). No model here, so code that must not set up Django can import it."""
from django.db import models


class Algorithm(models.TextChoices):
    PPO = "ppo", "PPO"
    GRPO = "grpo", "GRPO"
    RLOO = "rloo", "RLOO"
    DPO = "dpo", "DPO"
