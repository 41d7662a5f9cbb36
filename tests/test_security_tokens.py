"""A user's API tokens go when their password changes or they are deactivated."""
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from tests.support.api import token_client

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-123"


def works(api):
    return api.get("/api/v1/assignments/").status_code == 200


def test_changing_the_password_on_the_password_page_revokes_the_token(client, annotator):
    api = token_client(annotator)
    assert works(api)
    client.force_login(annotator)
    done = client.post("/accounts/password/", {"old_password": PASSWORD, "new_password1": "a-new-Secret-91",
                                               "new_password2": "a-new-Secret-91"})
    assert done.status_code == 302
    assert not Token.objects.filter(user=annotator).exists()
    assert api.get("/api/v1/assignments/").status_code == 401


def test_an_admin_setting_a_password_revokes_the_users_token(client, admin_user, annotator):
    admin_user.is_superuser = True
    admin_user.save()
    api = token_client(annotator)
    client.force_login(admin_user)
    done = client.post(f"/admin/auth/user/{annotator.pk}/password/",
                       {"password1": "set-by-Admin-77", "password2": "set-by-Admin-77", "usable_password": "true"})
    assert done.status_code == 302, done.content[:2000]
    assert api.get("/api/v1/assignments/").status_code == 401


def test_set_password_and_save_in_code_revokes_the_token(annotator):
    api = token_client(annotator)
    annotator.set_password("changed-in-Code-5")
    annotator.save()
    assert api.get("/api/v1/assignments/").status_code == 401


def test_deactivating_a_user_revokes_their_token(annotator):
    api = token_client(annotator)
    annotator.is_active = False
    annotator.save(update_fields=["is_active"])
    assert not Token.objects.filter(user=annotator).exists()
    assert api.get("/api/v1/assignments/").status_code == 401


def test_saving_other_fields_or_logging_in_keeps_the_token(client, annotator, make_user):
    api = token_client(annotator)
    other = token_client(make_user("other"))
    annotator.first_name = "Ann"
    annotator.save()
    assert client.post("/accounts/login/", {"username": "ann", "password": PASSWORD}).status_code == 302
    get_user_model().objects.get(pk=annotator.pk).save()
    assert works(api) and works(other)


def test_another_users_password_change_leaves_my_token_alone(annotator, make_user):
    mine = token_client(annotator)
    someone = make_user("someone")
    token_client(someone)
    someone.set_password("their-new-Secret-3")
    someone.save()
    assert works(mine)
    assert not Token.objects.filter(user=someone).exists()
