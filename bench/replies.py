"""Replies at a brisk human pace, within Telegram's per-chat limits: none lost, how fast.

Run from the repository root (it prints figures and asserts nothing about time):

    python bench/replies.py                 # 20 people, 2 reports each, 2 rounds, SQLite
    python bench/replies.py --users 50 --pace 1.0
    python bench/replies.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench

The fake Bot API server (`tests/fakes/telegram_api.py`) enforces Telegram's per-chat
limits at their real speed: a burst of three messages to a private chat, then one a
second; 429 with `retry_after` beyond. The bot runs in this process, built by the same
composition root as production. Each simulated person files reports the way a brisk
citizen does (`tests.test_replies.brisk_report`: every step answered before the next,
`--pace` seconds apart) and the time from each of their messages to the bot's answer is
taken; the album's step is reported apart, because its one acknowledgement waits
0.8 s for the album to end, by design. Two configurations run in the same session, round
after round:

- ``paced``: the bot as shipped, pacing each chat itself (TELEGRAM_CHAT_INTERVAL=1);
- ``unpaced``: the baseline, per-chat pacing off, as before this existed: every reply
  sent at once, so the platform's 429s do the pacing (the replies are retried, not lost).

A reply that never arrives within 15 s counts as lost (the person stops there).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bot.app import build_runtime  # noqa: E402
from bot.logs import configure_logging  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from tests.test_replies import brisk_report  # noqa: E402
from tests.webchat import free_port  # noqa: E402


@dataclass
class Round:
    config: str
    latencies: dict[str, list[float]]
    lost: int
    rate_limited: int

    @property
    def answers(self) -> list[float]:
        """Every step but the album's, whose one acknowledgement waits for the album's end."""
        return [v for kind, values in self.latencies.items() if kind != "album" for v in values]

    def percentile(self, share: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.answers if values is None else values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def one_person(
    fake: FakeTelegram, user_id: int, reports: int, pace: float, delay: float
) -> Round:
    """One person's reports, starting after `delay` (people do not all start at once)."""
    await asyncio.sleep(delay)
    user = fake.user(user_id=user_id, first_name=f"Người {user_id}")
    latencies: dict[str, list[float]] = {}
    try:
        for _ in range(reports):
            await brisk_report(user, pace, latencies)
    except AssertionError:
        return Round("", latencies, 1, 0)
    return Round("", latencies, 0, 0)


async def one_round(config: str, args: argparse.Namespace, workdir: Path) -> Round:
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    async with FakeTelegram() as fake:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token="42:BENCH",  # noqa: S106 - the fake's token
            telegram_api_base_url=fake.base_url,
            database_url=database_url,
            media_dir=workdir / "media",
            http_port=free_port(),
            reports_per_day=1000,
            telegram_chat_interval=1.0 if config == "paced" else 0.0,
            log_level="WARNING",
        )
        runtime = build_runtime(settings)
        await runtime.start()
        try:
            people = await asyncio.gather(
                *(
                    one_person(fake, 5000 + n, args.reports, args.pace, args.pace * n / args.users)
                    for n in range(args.users)
                )
            )
        finally:
            await runtime.stop()
        latencies: dict[str, list[float]] = {}
        for person in people:
            for kind, values in person.latencies.items():
                latencies.setdefault(kind, []).extend(values)
        return Round(config, latencies, sum(p.lost for p in people), fake.chat_limited)


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING", json=False)
    print(
        f"bench/replies.py: {args.users} people, {args.reports} reports each, a step every "
        f"{args.pace} s, {args.rounds} rounds; {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, database "
        f"{'SQLite' if args.database_url is None else 'PostgreSQL'}"
    )
    results: dict[str, list[Round]] = {"paced": [], "unpaced": []}
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.rounds):
            for config in results:
                load = os.getloadavg()[0]
                started = time.monotonic()
                workdir = Path(tmp) / f"{config}-{number}"
                workdir.mkdir()
                result = await one_round(config, args, workdir)
                results[config].append(result)
                album = result.latencies.get("album", [])
                print(
                    f"  round {number + 1} {config:8} answers {len(result.answers):4}  "
                    f"p50 {result.percentile(0.5):5.0f} ms  p99 {result.percentile(0.99):5.0f} ms"
                    f"  max {max(result.answers) * 1000:5.0f} ms  album ack p50 "
                    f"{result.percentile(0.5, album):5.0f} ms  429s {result.rate_limited:4}"
                    f"  lost {result.lost}  ({time.monotonic() - started:.0f} s, "
                    f"load before {load:.2f})"
                )
                kinds = sorted(result.latencies)
                print(
                    "      p99 by step: "
                    + ", ".join(
                        f"{kind} {result.percentile(0.99, result.latencies[kind]):.0f} ms"
                        for kind in kinds
                    )
                )
    print("summary (median over rounds, min–max in brackets):")
    for config, rounds in results.items():
        p50 = [r.percentile(0.5) for r in rounds]
        p99 = [r.percentile(0.99) for r in rounds]
        print(
            f"  {config:8} p50 {statistics.median(p50):5.0f} ms [{min(p50):.0f}–{max(p50):.0f}]"
            f"  p99 {statistics.median(p99):5.0f} ms [{min(p99):.0f}–{max(p99):.0f}]"
            f"  429s {sum(r.rate_limited for r in rounds)}  lost {sum(r.lost for r in rounds)}"
        )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--reports", type=int, default=2)
    parser.add_argument("--pace", type=float, default=1.0, help="seconds between a person's steps")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
