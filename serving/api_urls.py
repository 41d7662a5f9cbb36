"""/v1/: the OpenAI-compatible API (async views; rankloop.asgi serves this prefix on the event loop)."""
from django.urls import path, re_path

from . import api

urlpatterns = [
    path("chat/completions", api.chat_completions, name="v1-chat-completions"),
    path("models", api.models, name="v1-models"),
    re_path(r"^(?P<rest>.*)$", api.not_found),
]
