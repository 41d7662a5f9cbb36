"""The OpenAPI schema, its docs pages (local assets, no CDN) and schemathesis against it."""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error


@pytest.mark.django_db
def test_schema_and_docs_pages_need_no_cdn(client, admin_api, admin_user):
    client.force_login(admin_user)  # the schema and the docs need a login
    schema = admin_api.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/projects/{slug}/import/", "/api/v1/projects/{slug}/export/", "/api/v1/pairs/",
                 "/api/v1/assignments/{id}/submit/", "/api/v1/projects/{slug}/next-task/"):
        assert path in paths
    for page in ("/api/v1/docs/", "/api/v1/redoc/"):
        html = client.get(page).content.decode()
        assert "cdn." not in html and "unpkg" not in html and "/static/drf_spectacular_sidecar/" in html
    bundle = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert bundle.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_no_server_error_on_any_endpoint(admin_user, make_project, make_tasks):
    """schemathesis sends valid and invalid requests to every operation as an admin (through
    the WSGI app, on Postgres): any answer but a 5xx. Bounded: a few examples per operation,
    derandomized, both positive and negative generation."""
    from hypothesis import given
    from rest_framework.authtoken.models import Token

    from rankloop.wsgi import application

    from labeling import services
    from labeling.models import Annotation, Candidate, PreferencePair, Prompt
    from models_app import services as model_services
    from models_app.models import ModelVersion
    from rlhf.models import Round

    project = make_project("Fuzzed", annotators=[admin_user], slug="fuzzed")
    tasks = make_tasks(project, 3)
    done = services.assign_next(project, admin_user)
    services.submit_annotation(done.pk, admin_user, {"choice": "a"})
    leased = services.assign_next(project, admin_user)
    version = ModelVersion.objects.create(kind="policy", name="fuzz-policy", base_model="x", artifact_dir="x")
    deployment = model_services.deploy(project, version, user=admin_user)
    round_ = Round.objects.create(project=project, number=1)
    # Positive cases aim at real objects (random ids would mostly meet 404s).
    real_ids = {"projects": project.slug, "tasks": tasks[0].pk, "prompts": Prompt.objects.first().pk,
                "candidates": Candidate.objects.first().pk, "pairs": PreferencePair.objects.first().pk,
                "annotations": Annotation.objects.first().pk, "assignments": leased.pk,
                "model-versions": version.pk, "deployments": deployment.pk, "rounds": round_.pk}
    headers = {"Authorization": f"Token {Token.objects.create(user=admin_user).key}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application, headers=headers)
    failures = []
    # Deletions last, so the other operations still find the real objects.
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda op: op.method == "delete")
    assert len(operations) > 20
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=6, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case):
                if mode == schemathesis.GenerationMode.POSITIVE and case.path_parameters:
                    resource = case.operation.path.split("/")[3]
                    for name in case.path_parameters:
                        case.path_parameters[name] = real_ids[resource]
                case.call_and_validate(headers=headers, checks=[not_a_server_error])

            try:
                check()
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
