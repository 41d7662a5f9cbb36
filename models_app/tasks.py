"""Celery tasks (the `gpu` queue, by the route in settings): thin, they call the services."""
from celery import shared_task


@shared_task(name="models_app.tasks.generate_candidates_task")
def generate_candidates_task(project_id, prompt_ids, version_id=None, round_id=None, decoding=None, job_id=None):
    """Generate candidates and comparison tasks for the prompts; progress and errors go to a
    GenerationJob (created here when the caller did not queue one)."""
    from .models import GenerationJob
    from .services import run_generation_job

    if job_id is None:
        job = GenerationJob.objects.create(
            project_id=project_id, prompt_ids=list(prompt_ids), model_version_id=version_id, round_id=round_id,
            decoding=decoding or {}, total=len(prompt_ids),
        )
        job_id = job.pk
    job = run_generation_job(job_id)
    return {"job": job.pk, "status": job.status, "tasks_created": job.tasks_created, "error": job.error}
