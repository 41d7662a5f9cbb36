"""manage.py evaluate_reward_model VERSION FILE.jsonl — accuracy of a reward model version on a
preference file (TRL standard or conversational), printed as the last line."""
import gzip
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from models_app.models import ModelVersion


def read_preference_file(path: Path, limit: int = 0) -> list[dict]:
    """Rows with prompt / chosen / rejected (text or messages); a bad line is refused with its number."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{path}:{number}: not JSON ({exc}).") from exc
            if not isinstance(row, dict) or not {"chosen", "rejected"} <= set(row):
                raise CommandError(f"{path}:{number}: a preference row needs chosen and rejected.")
            row.setdefault("prompt", [])
            rows.append(row)
            if limit and len(rows) >= limit:
                break
    return rows


class Command(BaseCommand):
    help = "Accuracy of a reward model version on a preference JSONL file (share of chosen scored higher)."

    def add_arguments(self, parser):
        parser.add_argument("version", help="Reward model version: id or name.")
        parser.add_argument("file", help="JSON Lines (optionally .gz), TRL standard or conversational.")
        parser.add_argument("--limit", type=int, default=0, help="Only the first N rows.")

    def handle(self, *args, **options):
        from models_app.loading import artifact_path
        from rlhf.training import evaluate

        spec = options["version"]
        versions = ModelVersion.objects.filter(kind=ModelVersion.Kind.REWARD)
        version = (versions.filter(pk=int(spec)).first() if spec.isdigit() else None) or versions.filter(
            name=spec).first()
        if version is None:
            raise CommandError(f"No reward model version {spec!r}.")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        rows = read_preference_file(path, options["limit"])
        if not rows:
            raise CommandError(f"{path} has no preference rows.")
        from django.conf import settings

        if settings.RLHF_TORCH_THREADS:
            import torch

            torch.set_num_threads(settings.RLHF_TORCH_THREADS)
        model, tokenizer = evaluate.load_scorer(str(artifact_path(version)), "float32")
        figure = evaluate.pair_accuracy(model, tokenizer, rows, version.metrics.get("max_length"), 8, 0.95)
        self.stdout.write(f"{figure['pairs']} pairs, reward model {version}"
                          + (f" ({figure['pairs_skipped']} longer than its max_length left out)"
                             if figure["pairs_skipped"] else ""))
        self.stdout.write(f"{figure['mean']:.4f}" if figure["mean"] is not None else "not measured")
