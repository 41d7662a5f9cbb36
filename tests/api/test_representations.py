"""The annotator's hot-path answers are written out by hand (labeling/serializers.py): they must
say exactly what DRF's generic serializers say for the same objects."""
import pytest
from rest_framework import serializers

from labeling.actions.annotations import submit_annotation
from labeling.actions.assignments import assign_next
from labeling.models import Assignment
from labeling.serializers import AnnotationSerializer, AssignmentSerializer, ShownCandidateSerializer

pytestmark = pytest.mark.django_db


def generic(serializer, obj):
    return serializers.ModelSerializer.to_representation(serializer, obj)


def test_hand_written_representations_match_the_generic_ones(project, annotator, make_tasks, rf, admin_user):
    make_tasks(project, 2)
    leased = assign_next(project, annotator)
    fresh = AssignmentSerializer(leased)
    assert fresh.data == generic(fresh, leased)
    assert fresh.data["finished_at"] is None and fresh.data["leased_at"].endswith("Z")

    annotation = submit_annotation(leased.pk, annotator, {"choice": "a", "rationale": "clearer",
                                                                   "time_on_task_ms": 900})
    submitted = Assignment.objects.select_related("project", "task__prompt", "annotation").get(pk=leased.pk)
    for obj, serializer in [(submitted, AssignmentSerializer(submitted)),
                            (annotation, AnnotationSerializer(annotation))]:
        assert serializer.data == generic(serializer, obj)
    request = rf.get("/")
    request.user = admin_user
    as_admin = AnnotationSerializer(annotation, context={"request": request})
    assert as_admin.data == generic(as_admin, annotation) and as_admin.data["annotator"] == annotator.username

    candidate = leased.candidates_in_order[0]
    assert ShownCandidateSerializer(candidate).data == generic(ShownCandidateSerializer(candidate), candidate)
