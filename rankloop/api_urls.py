"""/api/v1/: every app's API views (labeling/api.py, models_app/api.py, rlhf/api.py), the
OpenAPI 3 schema and its docs pages (Swagger UI and Redoc, served from local static files)."""
from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from labeling import api as labeling_api
from models_app import api as models_api
from rlhf import api as rlhf_api

router = DefaultRouter()
router.register("projects", labeling_api.ProjectViewSet, basename="project")
# Next to projects: URLs resolve in this order, and next-task and submit are the busy ones.
router.register("assignments", labeling_api.AssignmentViewSet, basename="assignment")
router.register("prompts", labeling_api.PromptViewSet, basename="prompt")
router.register("candidates", labeling_api.CandidateViewSet, basename="candidate")
router.register("tasks", labeling_api.TaskViewSet, basename="task")
router.register("annotations", labeling_api.AnnotationViewSet, basename="annotation")
router.register("pairs", labeling_api.PairViewSet, basename="pair")
router.register("review-items", labeling_api.ReviewItemViewSet, basename="review-item")
router.register("model-versions", models_api.ModelVersionViewSet, basename="model-version")
router.register("deployments", models_api.DeploymentViewSet, basename="deployment")
router.register("generation-jobs", models_api.GenerationJobViewSet, basename="generation-job")
router.register("rounds", rlhf_api.RoundViewSet, basename="round")



def docs_page(view):
    """A docs page: a person who is not logged in goes to the login page. Swagger UI and Redoc
    set inline styles as they render (Redoc's styled-components inject <style> elements) and
    Redoc searches in a blob: worker, so these two pages allow both; their scripts are still
    files from this site (the Swagger split view serves its start-up script as a file)."""
    relaxed = csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]})
    return login_required(relaxed(view))


app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs_page(SpectacularSwaggerSplitView.as_view(url_name="api:schema")), name="docs"),
    path("redoc/", docs_page(SpectacularRedocView.as_view(url_name="api:schema")), name="redoc"),
    path("", include(router.urls)),
]
