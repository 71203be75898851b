"""common.text: one definition of acceptable text, applied to every free-text field of every endpoint and the admin."""

from __future__ import annotations

import sys
import unicodedata

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from common.text import FORBIDDEN_RANGES, NONCHARACTERS, TEXT_PATTERN, TEXT_RE, text_problem, text_validate
from hosts.models import EnrollmentKey, Host, Rack
from metrics.models import BatchReceipt
from tests.conftest import sample_dict

# Each looks like ordinary text, or like nothing, on a dashboard.
HOSTILE = {
    "nul": "R\x00",
    "csi (U+009B)": "R\x9b31m",
    "next line (U+0085)": "R\x851",
    "right-to-left override (U+202E)": "R\u202e1",
    "line separator (U+2028)": "R\u20281",
    "paragraph separator (U+2029)": "R\u20291",
    "zero-width space": "R\u200b1",
    "zero-width joiner": "R\u200d1",
    "byte order mark": "\ufeffR1",
    "soft hyphen": "R\xad1",
    "tab": "R\t1",
    "escape": "R\x1b[2J",
    "private use": "R\ue0001",
    "tag characters": "R1\U000e0041",
    "hangul filler": "R\u31641",
    "trailing space": "R1 ",
    "leading no-break space": "\xa0R1",
    "trailing newline": "R1\n",
}
ACCEPTABLE = ["R1", "Linux-x86_64", "0.1.0-dev", "Titan 01", "Salle B · rangée 3", "東京 ラック", "Café", "🚀 rack", ""]


def test_every_character_this_pythons_unicode_calls_control_format_or_separator_is_refused():
    # The ranges are written out in common/text.py; a newer Unicode database
    # with new format characters fails here until they are added.
    refused = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
    missing = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in refused and not any(a <= code <= b for a, b in FORBIDDEN_RANGES)
    ]
    assert missing == []


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_is_refused_with_a_reason(value):
    assert TEXT_RE.search(value) is None
    assert "not allowed" in text_problem(value)
    with pytest.raises(ValidationError):
        text_validate(value)


@pytest.mark.parametrize("value", ACCEPTABLE)
def test_ordinary_text_in_any_script_is_acceptable(value):
    assert TEXT_RE.search(value) is not None
    assert text_problem(value) is None
    text_validate(value)


def test_the_pattern_is_anchored_at_the_very_end():
    # ``$`` would match before a trailing newline.
    assert TEXT_PATTERN.endswith(r"\Z") and TEXT_PATTERN.startswith(r"\A")


# --- applied to every endpoint ----------------------------------------------------------------

SAMPLE_TEXT_FIELDS = ["platform", "agent_version", "rack"]
REGISTRATION_TEXT_FIELDS = ["platform", "agent_version", "display_name", "rack"]
SOME_HOSTILE = ["R\x9b1", "R\x851", "R\u202e1", "R\u20281", "\ufeffR1", "R\u200b1", "R1 ", "R\x00"]


@pytest.mark.django_db
@pytest.mark.usefixtures("open_twin")
@pytest.mark.parametrize("field", SAMPLE_TEXT_FIELDS)
@pytest.mark.parametrize("value", SOME_HOSTILE)
def test_a_sample_with_hostile_text_is_refused_and_nothing_is_stored(post_batch, field, value):
    response = post_batch([sample_dict("titan-01", **{field: value})])
    assert response.status_code == 400, response.content
    assert "printable text" in response.json()["rejected"][0]["reason"]
    assert not Host.objects.filter(hostname="titan-01").exists()
    assert not Rack.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", REGISTRATION_TEXT_FIELDS)
@pytest.mark.parametrize("value", SOME_HOSTILE)
def test_a_registration_with_hostile_text_is_refused(register, field, value):
    response = register("titan-01", **{field: value})
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_registration"
    assert "printable text" in response.json()["detail"]
    assert not Host.objects.filter(hostname="titan-01").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", SOME_HOSTILE)
def test_an_agent_session_with_hostile_text_is_a_400_not_a_500(make_agent, value):
    agent = make_agent("titan-01")
    response = agent.post(agent_session=value)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "malformed_batch"
    assert not BatchReceipt.objects.exists()


# --- applied to what admins type ---------------------------------------------------------------

ADMIN_FORMS = {
    "rack name": ("hosts_rack_add", {"name": "{}", "description": ""}),
    "rack description": ("hosts_rack_add", {"name": "R9", "description": "{}"}),
    "enrollment key name": ("hosts_enrollmentkey_add", {"name": "{}"}),
    "host display name": ("hosts_host_add", {"hostname": "titan-09", "display_name": "{}"}),
    "host platform": ("hosts_host_add", {"hostname": "titan-09", "platform": "{}"}),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("url_name", "form"), ADMIN_FORMS.values(), ids=ADMIN_FORMS.keys())
@pytest.mark.parametrize("value", ["R\u202e1", "R\x851", "R\u200b1", "R\u20281"])
def test_an_admin_cannot_store_hostile_text_in_the_inventory(admin_client, url_name, form, value):
    data = {"links_out-TOTAL_FORMS": "0", "links_out-INITIAL_FORMS": "0", "approved": "on"}
    data.update({k: v.format(value) for k, v in form.items()})
    response = admin_client.post(reverse(f"admin:{url_name}"), data)
    assert response.status_code == 200, response.content  # the form again, with the error
    assert b"is not allowed in printable text" in response.content
    assert not Rack.objects.exists()
    assert not EnrollmentKey.objects.exists()
    assert not Host.objects.filter(hostname="titan-09").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["Titan-01", "titan-01\n", " titan-01 ", "TITAN-01"])
def test_an_admin_cannot_add_a_host_differing_from_a_known_one_only_by_case_or_whitespace(admin_client, typed):
    Host.objects.create(hostname="titan-01")
    data = {"hostname": typed, "links_out-TOTAL_FORMS": "0", "links_out-INITIAL_FORMS": "0", "approved": "on"}
    response = admin_client.post(reverse("admin:hosts_host_add"), data)
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert list(Host.objects.exclude(is_virtual=True).values_list("hostname", flat=True)) == ["titan-01"]


@pytest.mark.django_db
def test_an_admin_typing_a_hostname_in_capitals_stores_it_lower_cased(admin_client):
    data = {"hostname": "Titan-02", "links_out-TOTAL_FORMS": "0", "links_out-INITIAL_FORMS": "0", "approved": "on"}
    response = admin_client.post(reverse("admin:hosts_host_add"), data)
    assert response.status_code == 302, response.content
    assert Host.objects.filter(hostname="titan-02").exists()


def test_the_sample_schema_shows_the_rule_to_clients():
    import msgspec

    from metrics.schema import SampleIn

    schema = orjson.loads(msgspec.json.encode(msgspec.json.schema(SampleIn)))
    platform = schema["$defs"]["SampleIn"]["properties"]["platform"]["anyOf"][0]
    assert platform["pattern"] == TEXT_PATTERN


@settings(max_examples=500)
@given(st.text(max_size=12) | st.text(alphabet=st.characters(min_codepoint=0x10000), max_size=4))
def test_the_pattern_accepts_exactly_text_without_a_forbidden_character_or_surrounding_whitespace(value):
    forbidden = any(a <= ord(c) <= b for c in value for a, b in FORBIDDEN_RANGES) or any(
        ord(c) in NONCHARACTERS for c in value
    )
    expected = not forbidden and value == value.strip()
    assert (TEXT_RE.search(value) is not None) == expected
    assert (text_problem(value) is None) == expected
