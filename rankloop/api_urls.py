"""/api/v1/: every app's API views (labeling/api.py, models_app/api.py, rlhf/api.py)."""
from django.urls import path

urlpatterns: list = []
