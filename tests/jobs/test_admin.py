"""The jobs admin shows a run's duration as an operator reads it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.admin import job_duration_text
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("milliseconds", "text"),
    [(None, "-"), (1.7087209998862818, "1.7 ms"), (249.6, "250 ms"), (3210.0, "3.2 s")],
)
def test_a_duration_reads_in_ms_or_s_with_few_digits(milliseconds, text):
    assert job_duration_text(milliseconds) == text


def test_the_job_list_and_page_show_the_rounded_duration_not_the_float(admin_client):
    job = Job.objects.create(
        name="test-job", every_seconds=60, next_run_at=timezone.now(), last_duration_ms=1.7087209998862818
    )
    listing = admin_client.get(reverse("admin:jobs_job_changelist"))
    page = admin_client.get(reverse("admin:jobs_job_change", args=[job.pk]))
    for response in (listing, page):
        assert response.status_code == 200
        assert b"1.7 ms" in response.content
        assert b"1.7087209998862818" not in response.content
