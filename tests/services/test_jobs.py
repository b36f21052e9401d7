"""labelyard.services.jobs: cutting frames into segments and sharing out their jobs."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from labelyard.domain import Job, Segment, Task, TaskState, TaskTeamMember, TeamRole
from labelyard.services.errors import InvalidInput
from labelyard.services.jobs import add_segments, segment_ranges


@pytest.mark.parametrize(
    ("size", "segment_size", "overlap", "expected"),
    [
        (0, 10, 0, []),
        (-3, 10, 0, []),
        (1, 0, 0, [(0, 0)]),
        (25, 0, 0, [(0, 24)]),
        (25, 0, 5, [(0, 24)]),
        (10, 10, 0, [(0, 9)]),
        (5, 10, 0, [(0, 4)]),
        (20, 10, 0, [(0, 9), (10, 19)]),
        (30, 10, 0, [(0, 9), (10, 19), (20, 29)]),
        (25, 10, 0, [(0, 9), (10, 19), (20, 24)]),
        (21, 10, 0, [(0, 9), (10, 19), (20, 20)]),
        (25, 10, 2, [(0, 9), (8, 17), (16, 24)]),
        (20, 10, 2, [(0, 9), (8, 17), (16, 19)]),
        (12, 4, 1, [(0, 3), (3, 6), (6, 9), (9, 11)]),
        (10, 10, 3, [(0, 9)]),
        (20, 10, -4, [(0, 9), (10, 19)]),
    ],
)
def test_segment_ranges(size, segment_size, overlap, expected):
    assert segment_ranges(0, size, segment_size, overlap) == expected


@pytest.mark.parametrize(
    ("size", "segment_size", "overlap", "expected"),
    [
        (20, 10, 8, [(0, 9), (5, 14), (10, 19)]),  # overlap 8 -> 5
        (20, 10, 10, [(0, 9), (5, 14), (10, 19)]),  # never a zero step
        (7, 3, 2, [(0, 2), (2, 4), (4, 6)]),  # 2 -> 1
        (10, 1, 1, [(i, i) for i in range(10)]),  # half of 1 frame is none
    ],
)
def test_overlap_is_capped_at_half_a_segment(size, segment_size, overlap, expected):
    assert segment_ranges(0, size, segment_size, overlap) == expected


@pytest.mark.parametrize(
    ("size", "segment_size", "overlap", "expected"),
    [
        (18, 10, 2, [(0, 9), (8, 17)]),  # CVAT would add (16, 17), already covered
        (17, 10, 2, [(0, 9), (8, 16)]),
        (9, 5, 1, [(0, 4), (4, 8)]),
    ],
)
def test_no_redundant_trailing_segment(size, segment_size, overlap, expected):
    assert segment_ranges(0, size, segment_size, overlap) == expected


def test_ranges_start_at_the_first_new_frame():
    assert segment_ranges(100, 25, 10, 0) == [(100, 109), (110, 119), (120, 124)]
    assert segment_ranges(7, 5, 0, 0) == [(7, 11)]


def test_ranges_cover_every_frame_once_apart_from_overlap():
    for size in range(1, 40):
        ranges = segment_ranges(0, size, 7, 2)
        assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
        for (_, last), (first, _) in pairwise(ranges):
            assert first == last - 1  # exactly two frames shared
        assert all(stop - start + 1 <= 7 for start, stop in ranges)


# --- add_segments ------------------------------------------------------------------


def make_task(factory, annotators=(), reviewers=(), state=TaskState.NOT_STARTED) -> int:
    owner = factory.user("owner")
    with factory.uow() as uow:
        task = Task(name="t", owner_id=owner.id, state=state)
        task.team = [TaskTeamMember(user_id=u.id, role=TeamRole.ANNOTATOR) for u in annotators]
        task.team += [TaskTeamMember(user_id=u.id, role=TeamRole.REVIEWER) for u in reviewers]
        uow.session.add(task)
        uow.commit()
        return task.id


def add(factory, task_id: int, ranges) -> tuple[list[tuple[int | None, int | None]], str]:
    """Add segments; answers every job's (assignee, reviewer) in frame order and the state."""
    with factory.uow() as uow:
        task = uow.session.get_one(Task, task_id)
        add_segments(uow, task, ranges)
        uow.commit()
    with factory.uow() as uow:
        task = uow.session.get_one(Task, task_id)
        people = [(j.assignee_id, j.reviewer_id) for s in task.segments for j in s.jobs]
        return people, task.state


def test_add_segments_makes_one_job_per_range(factory):
    task_id = make_task(factory)
    people, state = add(factory, task_id, [(0, 4), (5, 9)])
    assert people == [(None, None), (None, None)]
    assert state == TaskState.IN_PROGRESS
    with factory.uow() as uow:
        segments = uow.session.get_one(Task, task_id).segments
        assert [(s.start_frame, s.stop_frame, len(s.jobs)) for s in segments] == [
            (0, 4, 1),
            (5, 9, 1),
        ]
        assert all(s.jobs[0].status == "annotation" for s in segments)


def test_jobs_are_shared_round_robin_among_the_team(factory):
    ann1, ann2, rev = factory.user("ann1"), factory.user("ann2"), factory.user("rev")
    task_id = make_task(factory, annotators=[ann1, ann2], reviewers=[rev])
    people, _ = add(factory, task_id, [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)])
    assignees = [a for a, _ in people]
    first, second = assignees[:2]  # a tie at the start: either may go first
    assert {first, second} == {ann1.id, ann2.id}
    assert assignees == [first, second, first, second, first]
    assert [r for _, r in people] == [rev.id] * 5


def test_least_loaded_annotator_goes_first(factory):
    ann1, ann2, ann3 = factory.user("ann1"), factory.user("ann2"), factory.user("ann3")
    task_id = make_task(factory, annotators=[ann1, ann2, ann3])
    with factory.uow() as uow:  # ann1 already holds two jobs, ann2 one
        task = uow.session.get_one(Task, task_id)
        for frame, user in enumerate([ann1, ann1, ann2]):
            job = Job(assignee_id=user.id)
            task.segments.append(Segment(start_frame=frame, stop_frame=frame, jobs=[job]))
        uow.commit()
    people, _ = add(factory, task_id, [(3, 3), (4, 4), (5, 5)])
    new = [a for a, _ in people][3:]
    assert new[0] == ann3.id  # the only one without a job
    assert Counter(new) == {ann3.id: 2, ann2.id: 1}  # everyone ends with two


def test_without_a_team_jobs_stay_unassigned(factory):
    rev = factory.user("rev")
    task_id = make_task(factory, reviewers=[rev])
    people, _ = add(factory, task_id, [(0, 0), (1, 1)])
    assert people == [(None, rev.id), (None, rev.id)]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (TaskState.PAUSED, TaskState.PAUSED),
        (TaskState.COMPLETED, TaskState.COMPLETED),
        (TaskState.IN_PROGRESS, TaskState.IN_PROGRESS),
    ],
)
def test_only_a_not_started_task_starts(factory, before, after):
    task_id = make_task(factory, state=before)
    _, state = add(factory, task_id, [(0, 0)])
    assert state == after


def test_no_ranges_leave_the_task_not_started(factory):
    task_id = make_task(factory)
    people, state = add(factory, task_id, [])
    assert (people, state) == ([], TaskState.NOT_STARTED)


@pytest.mark.parametrize("ranges", [[(5, 4)], [(-1, 3)], [(0, 3), (7, 6)]])
def test_bad_ranges_are_refused_and_nothing_is_added(factory, ranges):
    task_id = make_task(factory)
    with factory.uow() as uow:
        task = uow.session.get_one(Task, task_id)
        with pytest.raises(InvalidInput) as refused:
            add_segments(uow, task, ranges)
        assert list(refused.value.fields) == ["segments"]
        assert task.segments == []
        assert task.state == TaskState.NOT_STARTED
