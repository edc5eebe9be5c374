from __future__ import annotations

import pytest

from jobs.scheduling import priority_announce, priority_leave
from tests.jobs.conftest import created, first_rows, spec


@pytest.mark.django_db
def test_a_job_learns_that_one_of_higher_priority_runs_on_its_deployment(editor, feedback):
    rows = first_rows(feedback, 2)
    low = created(editor, spec(feedback, selection="rows", row_ids=rows, priority="low"))
    normal = created(editor, spec(feedback, selection="rows", row_ids=rows))
    high = created(editor, spec(feedback, selection="rows", row_ids=rows, priority="high"))

    assert priority_announce(job=normal, ttl=5) is False
    assert priority_announce(job=low, ttl=5) is True
    assert priority_announce(job=high, ttl=5) is False
    assert priority_announce(job=normal, ttl=5) is True
    priority_leave(job=high)
    assert priority_announce(job=normal, ttl=5) is False
    assert priority_announce(job=low, ttl=5) is True
    priority_leave(job=normal)
    assert priority_announce(job=low, ttl=5) is False


@pytest.mark.django_db
def test_a_job_that_stopped_announcing_itself_no_longer_holds_others_back(editor, feedback):
    rows = first_rows(feedback, 2)
    normal = created(editor, spec(feedback, selection="rows", row_ids=rows))
    high = created(editor, spec(feedback, selection="rows", row_ids=rows, priority="high"))
    priority_announce(job=high, ttl=-1)  # its worker died: the entry has expired
    assert priority_announce(job=normal, ttl=5) is False
