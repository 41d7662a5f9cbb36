"""The Celery app. Two queues: `default` (aggregation, import, export) and `gpu`
(generation, training), so GPU machines can run only `gpu` workers."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rankloop.settings")

app = Celery("rankloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
