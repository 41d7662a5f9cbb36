from django.urls import path

from . import views

app_name = "rlhf"
urlpatterns = [
    path("", views.round_list, name="list"),
    path("p/<slug:slug>/", views.project_rounds, name="project"),
    path("p/<slug:slug>/generate/", views.generate, name="generate"),
    path("p/<slug:slug>/pairs/", views.pair_count, name="pairs"),
    path("<int:round_id>/", views.round_detail, name="detail"),
    path("<int:round_id>/progress/", views.round_progress, name="progress"),
    path("<int:round_id>/metrics.json", views.round_metrics, name="metrics"),
    path("<int:round_id>/<str:action>/", views.round_action, name="action"),
]
