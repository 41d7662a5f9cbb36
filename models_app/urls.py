from django.urls import path

from . import views

app_name = "models_app"
urlpatterns = [
    path("", views.version_list, name="versions"),
    path("versions/<int:pk>/", views.version_detail, name="version"),
    path("candidates/<int:pk>/", views.candidate_lineage, name="candidate"),
    path("playground/", views.playground, name="playground"),
    path("projects/<slug:slug>/", views.project_models, name="project"),
    path("projects/<slug:slug>/settings/", views.project_settings, name="project_settings"),
    path("projects/<slug:slug>/deploy/", views.project_deploy, name="project_deploy"),
    path("projects/<slug:slug>/rollback/", views.project_rollback, name="project_rollback"),
    path("projects/<slug:slug>/generate/", views.project_generate, name="project_generate"),
    path("projects/<slug:slug>/jobs/", views.project_jobs, name="project_jobs"),
]
