"""Every stage's TRL config builds from the project's common arguments without deprecation warnings."""
import warnings

import pytest

from rlhf import config


@pytest.mark.parametrize("stage", ["reward", "ppo", "grpo", "rloo", "dpo", "sft"])
def test_trainer_args_use_activation_checkpointing_and_warn_nothing(stage, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = config.trainer_args(stage, {}, output_dir=str(tmp_path), seed=1)
    assert args.activation_checkpointing is False  # off on CPU (TRL's own default would turn it on)
    assert [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))] == []
