"""The API-token settings page (/accounts/tokens/): each user creates, regenerates and revokes
their own token. Admins manage everyone's in the Django admin (Auth Token)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token


def issue_api_token(user) -> Token:
    """A new token for the user; any previous one stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def revoke_api_token(user) -> bool:
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    new_key = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            if revoke_api_token(request.user):
                messages.success(request, "Your API token is revoked; requests with it are refused from now on.")
            return redirect("api_tokens")
        new_key = issue_api_token(request.user).key
    token = Token.objects.filter(user=request.user).first()
    return render(request, "accounts/tokens.html", {"token": token, "new_key": new_key})
