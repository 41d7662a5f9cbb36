"""The staff project page's "seed from preference data" form: the same import, a message with
what it did, the refused lines listed on the page; staff only. And the management command."""
import io

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import PreferencePair

pytestmark = pytest.mark.django_db

LINES = b"\n".join(orjson.dumps(row) for row in [
    {"prompt": "Q1?", "chosen": "good", "rejected": "bad"},
    {"prompt": [{"role": "user", "content": "Q2?"}], "chosen": [{"role": "assistant", "content": "yes"}],
     "rejected": [{"role": "assistant", "content": "no"}]},
])


def upload(data, name="public-pairs.jsonl"):
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_the_page_form_imports_and_says_what_it_did(client, admin_user, make_project):
    project = make_project("Seeded")
    client.force_login(admin_user)
    page = client.get(reverse("labeling:project", args=[project.slug])).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert reverse("labeling:import_preferences", args=[project.slug]) in page
    url = reverse("labeling:import_preferences", args=[project.slug])
    response = client.post(url, {"file": upload(LINES), "source": ""}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("labeling:project", args=[project.slug])
    text = response.content.decode()
    assert "Imported 2 labelled pairs as import:public-pairs" in text
    assert "<td>import:public-pairs</td><td class=\"num\">2</td>" in text  # the pairs-by-source table
    assert set(PreferencePair.objects.values_list("source", flat=True)) == {"import:public-pairs"}
    again = client.post(url, {"file": upload(LINES), "source": ""}, follow=True).content.decode()
    assert "Imported 0 labelled pairs" in again and PreferencePair.objects.count() == 2


def test_the_page_lists_every_refused_line(client, admin_user, make_project):
    project = make_project("Refused")
    client.force_login(admin_user)
    bad = LINES + b'\n{"prompt": "Q3?", "chosen": "same", "rejected": "same"}\n{"prompt": "Q4?"}\n'
    response = client.post(reverse("labeling:import_preferences", args=[project.slug]),
                           {"file": upload(bad), "source": "mine"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Nothing was imported. Line 3, field rejected" in text
    assert "line 4, chosen: is missing" in text and "line 4, rejected: is missing" in text
    assert not PreferencePair.objects.exists()


def test_only_staff_may_use_the_form(client, annotator, make_project):
    project = make_project("Members only", annotators=[annotator])
    client.force_login(annotator)
    response = client.post(reverse("labeling:import_preferences", args=[project.slug]), {"file": upload(LINES)})
    assert response.status_code == 403 and not PreferencePair.objects.exists()


def test_the_command_imports_with_a_source_and_a_limit(make_project, tmp_path):
    project = make_project("Command")
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(LINES)
    out = io.StringIO()
    call_command("import_preferences", project.slug, str(path), "--source", "hh", "--limit", "1", stdout=out)
    assert out.getvalue().startswith("1 pairs imported as import:hh, 0 skipped")
    call_command("import_preferences", project.slug, str(path), "--source", "hh", stdout=out)
    assert "1 pairs imported as import:hh, 1 skipped (already imported)" in out.getvalue()
    assert PreferencePair.objects.filter(project=project, source="import:hh").count() == 2
    path.write_bytes(LINES + b'\n{"prompt": "Q3?", "chosen": 1, "rejected": "x"}\n')
    with pytest.raises(CommandError, match=r"(?s)Nothing was imported.*line 3, chosen: must be text"):
        call_command("import_preferences", project.slug, str(path), "--source", "hh")
    with pytest.raises(CommandError, match="No project"):
        call_command("import_preferences", "nope", str(path))
