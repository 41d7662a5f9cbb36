from django.urls import path

app_name = "models_app"
urlpatterns: list = []
