"""The API-token settings page (/accounts/tokens/): each user creates, regenerates and revokes
their own token. Admins manage everyone's in the Django admin (Auth Token). A user's tokens
go when their password changes or they are deactivated, whatever path saves the user."""
from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Sum
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
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


def note_credential_change(sender, instance, raw=False, update_fields=None, **kwargs):
    """pre_save of the user model: did the password hash change, or is the user being
    deactivated? Compared with the stored row, so every path counts: the password change page,
    the admin's set-password form, `manage.py changepassword`, set_password() and save() in
    code, unchecking "active". A save of other fields only (a login's last_login) skips this."""
    instance._revoke_api_tokens = False
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list("password", "is_active").first()
    if stored is None:
        return
    password, was_active = stored
    instance._revoke_api_tokens = password != instance.password or (was_active and not instance.is_active)


def revoke_tokens_after_credential_change(sender, instance, raw=False, **kwargs):
    """post_save: a token must not outlive the password (or the account) it was issued under."""
    if getattr(instance, "_revoke_api_tokens", False):
        instance._revoke_api_tokens = False
        revoke_api_token(instance)


@never_cache  # Cache-Control: no-store: the page shows a new token in full once
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


class LoginLockoutHandler(AxesDatabaseHandler):
    """django-axes' database handler with a second rule. Axes locks a username at one address
    (AXES_LOCKOUT_PARAMETERS); this also locks an address out of every account once it has
    failed RANKLOOP_LOGIN_FAILURES_PER_ADDRESS times within the cool-off (someone trying one
    password on many usernames). The limit is higher than the per-account one: an office
    behind one NAT address shares it."""

    def get_failures(self, request, credentials=None) -> int:
        failures = super().get_failures(request, credentials)
        limit = settings.RANKLOOP_LOGIN_FAILURES_PER_ADDRESS
        if not limit or failures >= settings.AXES_FAILURE_LIMIT:
            return failures
        attempts = AccessAttempt.objects.filter(ip_address=request.axes_ip_address)
        if settings.AXES_COOLOFF_TIME is not None:
            attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
        from_address = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
        # Past the address's limit, every login from it counts as locked out.
        return settings.AXES_FAILURE_LIMIT if from_address >= limit else failures
