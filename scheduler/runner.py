"""The one APScheduler of the deployment. It keeps time; what each job does is handed in.

No job store: durable schedule state lives in the project's own tables, so a restart
(or another instance taking over) resumes from the database, not from the scheduler.

Every job reads the clock when it runs and does what has come due since, so a late beat
is still worth running and two runs of one job at once are never needed:

- `max_instances=1`: a job still running at its next beat is not started twice; that
  beat is skipped, and the overrun logged once (`scheduler.job_overran`), not every beat;
- `coalesce=True`: beats missed while the event loop was busy run once, not once each;
- `misfire_grace_time=None`: however late, a due beat runs (it is never "missed").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    JobEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    run: Job
    every_seconds: float


class OverrunReporter:
    """One warning per overrun: from a job's first skipped beat until that run finishes."""

    def __init__(self, jobs: list[PeriodicJob]) -> None:
        self._every_seconds = {job.name: job.every_seconds for job in jobs}
        self._overrunning: set[str] = set()

    def __call__(self, event: JobEvent) -> None:
        if event.code != EVENT_JOB_MAX_INSTANCES:
            self._overrunning.discard(event.job_id)
        elif event.job_id not in self._overrunning:
            self._overrunning.add(event.job_id)
            log.warning(
                "scheduler.job_overran",
                job=event.job_id,
                every_seconds=self._every_seconds.get(event.job_id),
                outcome="still running at its next beat: beats are skipped until it finishes, "
                "then it runs at the next one",
            )


def build_scheduler(timezone: str, jobs: list[PeriodicJob]) -> AsyncIOScheduler:
    # APScheduler's own warning for an overrun repeats every beat; OverrunReporter says it once.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler = AsyncIOScheduler(
        timezone=timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    scheduler.add_listener(
        OverrunReporter(jobs), EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
    )
    for job in jobs:
        scheduler.add_job(
            job.run, "interval", seconds=job.every_seconds, id=job.name, name=job.name
        )
    return scheduler
