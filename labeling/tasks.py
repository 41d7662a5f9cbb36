from celery import shared_task

from .actions import assignments


@shared_task
def reclaim_expired_leases():
    """Periodic (beat): give lapsed leases back to the queue."""
    return assignments.reclaim_expired_leases()
