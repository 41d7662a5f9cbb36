from celery import shared_task

from . import services


@shared_task
def reclaim_expired_leases():
    """Periodic (beat): give lapsed leases back to the queue."""
    return services.reclaim_expired_leases()
