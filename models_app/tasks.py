"""Celery tasks (the `gpu` queue, by the route in settings): thin, they call the services."""
from celery import shared_task

from . import services


@shared_task(name=services.GENERATION_TASK)
def run_generation_job(job_id):
    """Run a queued GenerationJob (the services create it, with its prompts and settings): its
    progress and errors go to the job."""
    job = services.run_generation_job(job_id)
    return {"job": job.pk, "status": job.status, "tasks_created": job.tasks_created, "error": job.error}
