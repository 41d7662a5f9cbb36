from django.urls import path

from . import views

app_name = "labeling"
urlpatterns = [
    path("", views.home, name="home"),
    path("p/<slug:slug>/", views.project_detail, name="project"),
    path("p/<slug:slug>/preferences/import/", views.import_preferences, name="import_preferences"),
    path("p/<slug:slug>/annotate/", views.annotate, name="annotate"),
    path("p/<slug:slug>/members/<int:user_id>/reinstate/", views.reinstate, name="reinstate"),
    path("p/<slug:slug>/preview/", views.preview, name="preview"),
    path("p/<slug:slug>/review/", views.review_next, name="review"),
    path("p/<slug:slug>/review/<int:item_id>/", views.review_decide, name="review_decide"),
    path("p/<slug:slug>/assignments/<int:assignment_id>/submit/", views.submit, name="submit"),
    path("p/<slug:slug>/assignments/<int:assignment_id>/skip/", views.skip, name="skip"),
]
