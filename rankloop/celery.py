"""The Celery app. Two queues: `default` (aggregation, import, export) and `gpu`
(generation, training), so GPU machines can run only `gpu` workers."""
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rankloop.settings")

app = Celery("rankloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _no_progress_bars(**kwargs):
    """A worker's stderr goes to its log, where every tqdm refresh (converting, loading, saving
    weights) is a WARNING line: a worker shows no progress bars. tqdm reads TQDM_DISABLE when it
    is imported, which in a worker happens later, in the task that loads a model."""
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
