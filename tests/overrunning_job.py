"""`python -m tests.overrunning_job`: the bot's scheduler and logging, one job that overruns.

The job `slow-tick` (every 0.05 s) overruns twice, each time outlasting three of its beats
(it waits for the scheduler to skip them, not for the clock), then fails once, then
returns; the process exits. tests/test_scheduler.py reads what it printed.
"""

from __future__ import annotations

import asyncio

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent

from bot.logs import configure_logging
from scheduler.runner import PeriodicJob, build_scheduler

OVERRUNS = 2
BEATS_OUTLASTED = 3


async def main() -> None:
    configure_logging(json=True)
    beat_skipped = asyncio.Event()
    finished = asyncio.Event()
    runs = 0

    async def slow_tick() -> None:
        nonlocal runs
        runs += 1
        if runs <= OVERRUNS:
            for _ in range(BEATS_OUTLASTED):
                beat_skipped.clear()
                await beat_skipped.wait()
        elif runs == OVERRUNS + 1:
            raise RuntimeError("a failing tick")
        else:
            finished.set()

    def on_skip(_event: JobEvent) -> None:
        beat_skipped.set()

    scheduler = build_scheduler("UTC", [PeriodicJob("slow-tick", slow_tick, 0.05)])
    scheduler.add_listener(on_skip, EVENT_JOB_MAX_INSTANCES)
    scheduler.start()
    await finished.wait()
    scheduler.shutdown(wait=False)


if __name__ == "__main__":
    asyncio.run(main())
