"""Which rate limit applies (project, user group, both, the settings), and the token window."""
from django.contrib.auth.models import Group

from serving import limits, services
from serving.models import RateLimit


def test_most_specific_limit_applies(db, make_project, make_user, settings):
    settings.RANKLOOP_SERVING_REQUESTS_PER_MINUTE, settings.RANKLOOP_SERVING_TOKENS_PER_DAY = 7, 700
    user, project, other = make_user("u"), make_project(name="P"), make_project(name="Q")
    assert services.rate_limit_for(user, project) == (7, 700)
    researchers = Group.objects.create(name="researchers")
    RateLimit.objects.create(group=researchers, requests_per_minute=50, tokens_per_day=5000)
    RateLimit.objects.create(project=project, requests_per_minute=10, tokens_per_day=1000)
    assert services.rate_limit_for(user, project) == (10, 1000)
    user.groups.add(researchers)
    assert services.rate_limit_for(user, other) == (50, 5000)
    assert services.rate_limit_for(user, project) == (10, 1000)  # the project's own row is more specific
    RateLimit.objects.create(project=project, group=researchers, requests_per_minute=99, tokens_per_day=9900)
    assert services.rate_limit_for(user, project) == (99, 9900)


def test_tokens_per_day_window_refuses_once_spent_and_counts_per_identity(db):
    state = limits.check(["p1:u1", "p1:tabc"], requests_per_minute=100, tokens_per_day=50)
    assert not state.refused and state.remaining_tokens == 50 and state.remaining_requests == 99
    state.add_tokens(50)
    refused = limits.check(["p1:u1", "p1:tabc"], requests_per_minute=100, tokens_per_day=50)
    assert refused.refused == "tokens" and refused.remaining_tokens == 0
    assert int(refused.headers()["Retry-After"]) >= 1
    # Another token of the same user is refused too (the user's window is spent) ...
    assert limits.check(["p1:u1", "p1:tother"], requests_per_minute=100, tokens_per_day=50).refused == "tokens"
    # ... and another user is not.
    assert not limits.check(["p1:u2"], requests_per_minute=100, tokens_per_day=50).refused
