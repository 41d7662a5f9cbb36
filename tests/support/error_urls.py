"""A URL conf for tests of the error mapping: the site's own URLs, and a page and an API view
that raise what a service might (a RankloopError, a real database refusal)."""
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import include, path
from rest_framework.views import APIView

from rankloop.errors import Conflict, NotAllowed

SECRET_NAME = "the-secret-row"


def refused_page(request):
    raise Conflict("This task was closed meanwhile.", {"task": "closed"}, code="task_closed")


def refused_api_view():
    class Refused(APIView):
        authentication_classes = []
        permission_classes = []

        def get(self, request):
            raise NotAllowed("Only the task's annotator may see this.", code="not_yours")

        post = get

    return Refused.as_view()


def duplicate_page(request):
    """A second user named as the first: the database refuses (unique), inside a transaction as
    the services write."""
    User = get_user_model()
    with transaction.atomic():
        User.objects.create(username=SECRET_NAME)
    with transaction.atomic():
        User.objects.create(username=SECRET_NAME)


def too_long_page(request):
    with transaction.atomic():
        get_user_model().objects.create(username=SECRET_NAME * 20)  # over the column's 150 characters


urlpatterns = [
    path("test-errors/refused/", refused_page),
    path("test-errors/api/", refused_api_view()),
    path("test-errors/duplicate/", duplicate_page),
    path("test-errors/too-long/", too_long_page),
    path("", include("rankloop.urls")),
]
