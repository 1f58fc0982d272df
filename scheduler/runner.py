"""The one APScheduler of the deployment. It keeps time; what each job does is handed in.

No job store: durable schedule state lives in the project's own tables, so a restart
(or another instance taking over) resumes from the database, not from the scheduler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

Job = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    run: Job
    every_seconds: float


def build_scheduler(timezone: str, jobs: list[PeriodicJob]) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        timezone=timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    for job in jobs:
        scheduler.add_job(job.run, "interval", seconds=job.every_seconds, id=job.name)
    return scheduler
