from django.urls import path

from . import views

app_name = "serving"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.new_conversation, name="new"),
    path("opt-out/", views.opt_out, name="opt_out"),
    path("c/<int:pk>/", views.index, name="conversation"),
    path("c/<int:pk>/send/", views.send, name="send"),
    path("m/<int:pk>/", views.message_fragment, name="message"),
    path("m/<int:pk>/stream/", views.stream, name="stream"),  # async: rankloop.asgi keeps it off the threads
    path("m/<int:pk>/stop/", views.stop, name="stop"),
    path("m/<int:pk>/regenerate/", views.regenerate, name="regenerate"),
    path("m/<int:pk>/edit/", views.edit, name="edit"),
    path("m/<int:pk>/feedback/", views.feedback, name="feedback"),
    path("m/<int:pk>/compare/", views.compare, name="compare"),
]
