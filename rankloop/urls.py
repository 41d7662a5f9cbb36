from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from rankloop import account_views

urlpatterns = [
    path("api/v1/", include("rankloop.api_urls")),  # first: annotators' API calls are most of the traffic
    path("v1/", include("serving.api_urls")),  # the OpenAI-compatible API (serving)
    path("chat/", include("serving.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/tokens/", account_views.api_tokens, name="api_tokens"),
    path("models/", include("models_app.urls")),
    path("rounds/", include("rlhf.urls")),
    # Pages link the icon; this answers browsers that ask for it anyway (the admin, the API docs).
    path("favicon.ico", lambda request: HttpResponsePermanentRedirect(static("favicon.svg"))),
    path("", include("labeling.urls")),
]
