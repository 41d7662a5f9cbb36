"""TRL's PPO warns from torch at every step of a tiny round (the var() of a single ratio); that
one warning is silenced while PPO trains, nothing else (the PPO round in test_loop.py checks
the worker's log)."""
import warnings

import torch

from rlhf import trainers


def test_only_ppos_one_ratio_variance_warning_is_silenced():
    one_ratio = torch.tensor([1.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with trainers.quiet_ppo_ratio_var():
            one_ratio.var()
            warnings.warn("another warning", UserWarning)
        one_ratio.var()
    assert [str(w.message).split(".")[0] for w in caught] == [
        "another warning", "var(): degrees of freedom is <= 0"]
