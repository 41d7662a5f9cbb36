"""Staff requests that used to end in a 500: a form PATCH of a project's lists to null, a model
path too long for the OS; and database refusals never show the database's own text."""
import logging

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DataError, IntegrityError, OperationalError

from rankloop.api_common import exception_handler

pytestmark = pytest.mark.django_db

LONG_PATH = "/tmp/" + "x" * 300


@pytest.mark.parametrize("field", ["flag_choices", "rating_aspects", "decoding_config"])
@pytest.mark.parametrize("fmt", ["multipart", "urlencoded"])
def test_it_answers_400_to_a_form_patch_setting_a_project_list_to_null(admin_api, project, field, fmt):
    url = f"/api/v1/projects/{project.slug}/"
    if fmt == "multipart":
        response = admin_api.patch(url, {field: "null"}, format="multipart")
    else:
        response = admin_api.patch(url, f"{field}=null", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400, response.content
    assert field in response.json()
    project.refresh_from_db()
    assert getattr(project, field) is not None


def test_it_answers_400_to_a_json_patch_setting_a_project_list_to_null(admin_api, project):
    response = admin_api.patch(f"/api/v1/projects/{project.slug}/", {"flag_choices": None}, format="json")
    assert response.status_code == 400 and "flag_choices" in response.json()


@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_it_answers_400_to_a_model_path_too_long_for_the_os(admin_api, fmt, settings, tmp_path):
    settings.MODEL_STORE = tmp_path
    response = admin_api.post("/api/v1/model-versions/", {"path": LONG_PATH, "name": "long"}, format=fmt)
    assert response.status_code == 400, response.content
    assert "too long" in response.json()["detail"]
    assert "Errno" not in response.json()["detail"]


def test_it_refuses_a_model_path_too_long_on_the_command_line(settings, tmp_path):
    settings.MODEL_STORE = tmp_path
    with pytest.raises(CommandError, match="too long"):
        call_command("register_model", LONG_PATH)


@pytest.mark.parametrize("error, status", [
    (DataError('value too long for type character varying(200)\nCONTEXT: secret_table'), 400),
    (IntegrityError('duplicate key value violates unique constraint "secret_idx"\nDETAIL: Key (x)=(1)'), 409),
    (OperationalError("deadlock detected\nDETAIL: Process 1 waits for secret_lock"), 409),
])
def test_it_keeps_the_databases_text_from_the_client_and_logs_it(error, status, caplog):
    # Django wraps the driver's error; the driver's own text is the secret here.
    if isinstance(error, OperationalError):
        error.__cause__ = psycopg.errors.DeadlockDetected(str(error))
    with caplog.at_level(logging.WARNING, logger="rankloop.api"):
        response = exception_handler(error, {"view": None, "request": None})
    assert response.status_code == status
    detail = response.data["detail"]
    assert "secret" not in detail and "violates" not in detail and "character varying" not in detail
    assert "secret" in caplog.text
