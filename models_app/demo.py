"""The demo's candidates, written by the bundled default policy.

`demo_generator(entries)` converts and registers the default model (once), answers the demo
prompts that have no task yet in batches, and returns the `generate(prompt, k)` hook that
labeling's load_demo takes. It returns None (so load_demo uses its hand-written answers)
when the model is unavailable."""
from __future__ import annotations

import os

from labeling.models import ComparisonTask

DEMO_DECODING = {"strategy": "sample", "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 128, "seed": 2024}
DEMO_K = 3  # the ranking project's K; the pairwise one takes the first two


def generation_requested(flag: bool = False) -> bool:
    """Asked for by the command's --generate flag or RANKLOOP_DEMO_GENERATE=1."""
    return flag or os.environ.get("RANKLOOP_DEMO_GENERATE", "").strip().lower() in {"1", "true", "yes", "on"}


def demo_generator(entries, *, log=print):
    """The load_demo hook answering `entries` (demo prompt specs with "key" and "messages"), or None."""
    from . import services
    from .default_model import DefaultModelMissing

    done = set(
        ComparisonTask.objects.filter(prompt__external_id__startswith="demo:").values_list("prompt__external_id", flat=True)
    )
    todo = [e for e in entries if f"demo:{e['key']}" not in done]
    if not todo:
        return None
    try:
        version = services.bootstrap_default_model()
        log(f"Writing demo candidates for {len(todo)} prompts with {version} (batched, on CPU this takes a minute)...")
        return services.pregenerated_candidates(version, [e["messages"] for e in todo], k=DEMO_K, decoding=DEMO_DECODING)
    except (DefaultModelMissing, services.ModelRegistryError, OSError) as error:
        log(f"Default model unavailable ({error}): using the hand-written answers.")
        return None


def deploy_default_on(projects, *, log=print):
    """Deploy the default policy on `projects` that have none (after load_demo created them)."""
    from . import services
    from .default_model import DefaultModelMissing

    try:
        return services.bootstrap_default_model(projects=projects)
    except (DefaultModelMissing, services.ModelRegistryError, OSError) as error:
        log(f"Default model unavailable ({error}); no policy deployed.")
        return None
