"""Broadcast throughput under Telegram's global limit, against a plain python-telegram-bot loop.

Run from the repository root (it prints figures and asserts nothing about time):

    python bench/broadcast.py                   # 600 at 30/s, 20,000 at 1,000/s and unlimited
    python bench/broadcast.py --quick           # 90 at 30/s, 2,000 at 1,000/s: a smoke run
    python bench/broadcast.py --subscribers 3000 --sample 300
    python bench/broadcast.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    python bench/broadcast.py --quick --profile /tmp/dispatch.prof   # our 1,000/s dispatching

The default run lasts two to three minutes on a 2-core machine, most of it in the two
rate-limited phases, whose length the limit sets (600 / 30 + 20,000 / 1,000 seconds for each
sender); a run of 3,000 subscribers takes about a minute. It exits non-zero, with ERROR lines,
when our bot loses a message (a subscriber never served, or an outbox row not `sent` at the
end) or sends one twice.

A lean fake Bot API server runs in its own process (this script with ``--serve-fake PORT
LIMIT``): it answers ``getMe`` and ``sendMessage`` and accepts at most LIMIT ``sendMessage``
calls in any sliding one-second window, answering the others with a 429 and
``retry_after: 1``, as Telegram does. It counts accepted sends and 429s per chat and notes
when the first and the last send were accepted. The window is strict: a sender pacing at
exactly the limit meets 429s from timing jitter alone (a send delayed by a millisecond, then
one on time a second later), and each costs that message a retry a second or more later.

Senders, each against a fresh fake (``/reset`` between them):

- ``guongsang``: our bot's own machinery, in this process: a fresh database (a SQLite file in a
  temporary directory, or a scratch database created beside ``--database-url`` and dropped at
  the end) with the subscribers bulk-inserted, one announcement ``Broadcast`` due now,
  ``handlers.broadcasting.start_due`` writing one outbox row per subscriber (untimed), then
  ``Runtime.build_dispatcher().run()`` until the fake has served every subscriber and every
  outbox row is recorded. Only the Telegram application is initialised (no polling, no web
  server, no scheduler);
- ``ptb-loop``: a plain python-telegram-bot ``Application`` with ``AIORateLimiter`` at the same
  limit (``max_retries=5``, its default HTTPX request), calling ``bot.send_message`` for the
  same chats, one after the other: the usual way to broadcast with python-telegram-bot.

Phases: the free limit, 30/s, on a short sample (``--sample``); Telegram's paid-broadcast
maximum, 1,000/s, on the full run (``--subscribers``); and no limit at all, ours only: the
ceiling of the machinery on this machine, with the dispatcher built as for 1,000/s but its
Telegram limiter at a million a second.

Figures, per phase and sender: messages accepted by the fake; seconds from the first to the
last accepted send; the rate over that span ((messages - 1) / seconds) and its share of the
limit; the slowest complete second; 429s received; duplicates (accepted sends beyond one per
chat); subscribers lost (never served); CPU seconds of this process per 1,000 messages (all
its threads, around the sending only); and the fake's CPU as a share of one core (if near
100%, the fake is what limits the ceiling). The target: at least 0.97 of 1,000/s, with
nothing lost or repeated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

SCRIPT = Path(__file__).resolve()
REPO_ROOT = SCRIPT.parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy import select as select_columns  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import col  # noqa: E402
from telegram.constants import ParseMode  # noqa: E402
from telegram.error import TelegramError  # noqa: E402
from telegram.ext import AIORateLimiter, ApplicationBuilder  # noqa: E402

from bot import db  # noqa: E402
from bot.app import Runtime, build_runtime  # noqa: E402
from bot.channels.telegram import TelegramChannel  # noqa: E402
from bot.logs import configure_logging  # noqa: E402
from bot.settings import Settings  # noqa: E402
from handlers.broadcasting import start_due  # noqa: E402
from models.broadcasts import create_broadcast  # noqa: E402
from models.outbox import broadcast_payloads, delivery_counts  # noqa: E402
from models.tables import Broadcast, BroadcastKind, Person, Subscription  # noqa: E402
from scheduler.dispatcher import Dispatcher  # noqa: E402

type JsonDict = dict[str, Any]

TOKEN = "1:BENCH"  # noqa: S105 - a made-up token, for the fake only
FREE_LIMIT = 30
PAID_LIMIT = 1000
NO_LIMIT = 0
UNLIMITED_RATE = 1_000_000.0
TARGET_RATIO = 0.97
DEFAULT_SUBSCRIBERS = 20_000
DEFAULT_SAMPLE = 600
QUICK_SUBSCRIBERS = 2_000
QUICK_SAMPLE = 90
FIRST_CHAT_ID = 700_000_000
SAMPLE_COMMUNE = 6184
OTHER_COMMUNE = 6187
ANNOUNCEMENT = (
    "Hội đồng Thi đua - Khen thưởng tỉnh phát động phong trào “Người tốt, việc tốt” năm nay: "
    "hãy kể cho chúng tôi về những tấm gương sáng quanh bạn."
)
POLL_SECONDS = 0.2
FAKE_READY_TIMEOUT = 30.0
STOP_TIMEOUT_SECONDS = 10.0
WINDOW_SECONDS = 1.0


class BenchError(Exception):
    """The benchmark could not run as designed."""


# --- The fake Bot API server (its own process) ---------------------------------------------

BOT_USER = {"id": 1, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
TOO_MANY = json.dumps(
    {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
).encode()


def _ok(result: object, status: int = 200) -> web.Response:
    body = json.dumps({"ok": True, "result": result}).encode()
    return web.Response(body=body, status=status, content_type="application/json")


async def _fields(request: web.Request) -> JsonDict:
    """A Bot API call's parameters, sent as JSON, as a form or as multipart."""
    if request.content_type == "application/json":
        return dict(await request.json())
    if request.content_type.startswith("multipart/"):
        return dict(await request.post())
    return dict(parse_qsl((await request.read()).decode()))


class FakeBotApi:
    """Just enough of the Bot API to broadcast to, with a global sliding-window limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        self._window: deque[float] = deque()
        self.accepted: dict[int, int] = {}
        self.rejected: dict[int, int] = {}
        self.total_accepted = 0
        self.total_rejected = 0
        self.first: float | None = None
        self.last: float | None = None
        self.per_second: dict[int, int] = {}
        self._message_id = 0
        self._cpu_at_reset = time.process_time()

    def _admit(self, now: float) -> bool:
        """Whether one more send fits in the second up to `now` (and count it if so)."""
        window = self._window
        horizon = now - WINDOW_SECONDS
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= self.limit:
            return False
        window.append(now)
        return True

    def _send_message(self, fields: JsonDict) -> web.Response:
        now = time.monotonic()
        chat_id = int(fields["chat_id"])
        if self.limit and not self._admit(now):
            self.rejected[chat_id] = self.rejected.get(chat_id, 0) + 1
            self.total_rejected += 1
            return web.Response(body=TOO_MANY, status=429, content_type="application/json")
        self.accepted[chat_id] = self.accepted.get(chat_id, 0) + 1
        self.total_accepted += 1
        if self.first is None:
            self.first = now
        self.last = now
        second = int(now - self.first)
        self.per_second[second] = self.per_second.get(second, 0) + 1
        self._message_id += 1
        message = {
            "message_id": self._message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "text": str(fields.get("text", "")),
        }
        return _ok(message)

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "sendMessage":
            return self._send_message(await _fields(request))
        if method == "getMe":
            return _ok(BOT_USER)
        return _ok(True)

    async def progress(self, _request: web.Request) -> web.Response:
        return _ok(
            {
                "served": len(self.accepted),
                "accepted": self.total_accepted,
                "rejected": self.total_rejected,
            }
        )

    async def stats(self, _request: web.Request) -> web.Response:
        return _ok(
            {
                "accepted": self.accepted,
                "rejected": self.rejected,
                "first": self.first,
                "last": self.last,
                "per_second": self.per_second,
                "cpu": time.process_time() - self._cpu_at_reset,
            }
        )

    async def reset_handler(self, _request: web.Request) -> web.Response:
        self.reset()
        return _ok(True)


async def serve_fake(port: int, limit: int) -> None:
    """Serve until SIGTERM or until the parent goes; print the port once listening."""
    fake = FakeBotApi(limit)
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", fake.api)
    app.router.add_get("/progress", fake.progress)
    app.router.add_get("/stats", fake.stats)
    app.router.add_post("/reset", fake.reset_handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print(runner.addresses[0][1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    parent = os.getppid()
    try:
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await runner.cleanup()


# --- Driving the fake from the benchmark ---------------------------------------------------


@dataclass(frozen=True)
class FakeStats:
    accepted: dict[int, int]
    rejected: dict[int, int]
    first: float | None
    last: float | None
    per_second: dict[int, int]
    cpu: float

    @classmethod
    def from_json(cls, data: JsonDict) -> FakeStats:
        return cls(
            accepted={int(k): int(v) for k, v in data["accepted"].items()},
            rejected={int(k): int(v) for k, v in data["rejected"].items()},
            first=data["first"],
            last=data["last"],
            per_second={int(k): int(v) for k, v in data["per_second"].items()},
            cpu=float(data["cpu"]),
        )

    @property
    def span(self) -> float:
        return self.last - self.first if self.first is not None and self.last is not None else 0.0

    def slowest_second(self) -> int | None:
        """The fewest sends accepted in one complete second after the first (None if < 1 s)."""
        complete = int(self.span)
        if complete < 1:
            return None
        return min(self.per_second.get(second, 0) for second in range(complete))


class FakeServer:
    """The fake in a child process: this script with ``--serve-fake 0 LIMIT``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FakeServer:
        argv = [str(SCRIPT), "--serve-fake", "0", str(self.limit)]
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, stdout=asyncio.subprocess.PIPE
        )
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(FAKE_READY_TIMEOUT):
                line = await self._process.stdout.readline()
        except TimeoutError as error:
            raise BenchError(f"the fake did not start within {FAKE_READY_TIMEOUT}s") from error
        if not line.strip().isdigit():
            raise BenchError(f"the fake did not start (exit code {await self._process.wait()})")
        self.url = f"http://127.0.0.1:{int(line)}"
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await self._process.wait()
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    async def _call(self, method: str, path: str) -> Any:
        assert self._http is not None
        async with self._http.request(method, f"{self.url}{path}") as response:
            return (await response.json())["result"]

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def served(self) -> int:
        return int((await self._call("GET", "/progress"))["served"])

    async def stats(self) -> FakeStats:
        return FakeStats.from_json(await self._call("GET", "/stats"))

    async def wait_served(self, chats: int, deadline: float) -> bool:
        """Until `chats` distinct chats got a message, or the monotonic `deadline`."""
        while await self.served() < chats:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True


# --- Measuring -----------------------------------------------------------------------------


@dataclass
class Measurement:
    """One sender's figures in one phase."""

    phase: str
    sender: str
    limit: int
    expected: int
    stats: FakeStats
    cpu: float
    lost: int
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(self.stats.accepted.values())

    @property
    def rate(self) -> float:
        span = self.stats.span
        return (self.messages - 1) / span if span > 0 else 0.0

    @property
    def ratio(self) -> float | None:
        return self.rate / self.limit if self.limit else None

    @property
    def rejected(self) -> int:
        return sum(self.stats.rejected.values())

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.stats.accepted.values() if count > 1)

    @property
    def cpu_per_thousand(self) -> float:
        return self.cpu / self.messages * 1000 if self.messages else float("nan")

    @property
    def fake_share(self) -> float:
        return self.stats.cpu / self.stats.span if self.stats.span > 0 else float("nan")


def never_served(stats: FakeStats, chat_ids: Iterable[int]) -> int:
    return sum(1 for chat_id in chat_ids if chat_id not in stats.accepted)


def deadline_for(messages: int, limit: int) -> float:
    """A generous monotonic deadline for sending `messages` at `limit` a second."""
    return time.monotonic() + 30.0 + 3.0 * messages / (limit or PAID_LIMIT)


# --- The database --------------------------------------------------------------------------


def _maintenance_connection_args(database_url: str) -> JsonDict:
    url = make_url(database_url)
    return {
        "host": url.host,
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "database": "postgres",
        "timeout": 5,
    }


@contextlib.asynccontextmanager
async def scratch_database(database_url: str | None, workdir: Path) -> AsyncIterator[str]:
    """A URL to a new, empty database: a SQLite file, or a PostgreSQL one dropped at the end."""
    if database_url is None:
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        return
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise BenchError("--database-url must be a postgresql+asyncpg:// URL")
    name = f"gs_bench_{uuid.uuid4().hex[:12]}"
    args = _maintenance_connection_args(database_url)
    connection = await asyncpg.connect(**args)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        connection = await asyncpg.connect(**args)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def add_subscribers(database_url: str, chat_ids: list[int], sample: int) -> None:
    """Persons and their subscriptions, in bulk; the first `sample` in the sample's commune."""
    now = datetime.now(UTC)
    engine = db.make_engine(database_url)
    try:
        async with engine.begin() as connection:
            people = [
                {
                    "channel": "telegram",
                    "external_id": str(chat_id),
                    "display_name": f"Bench {n}",
                    "locale": "vi",
                    "created_at": now,
                }
                for n, chat_id in enumerate(chat_ids)
            ]
            await connection.execute(insert(Person), people)
            rows = await connection.execute(select_columns(col(Person.id), col(Person.external_id)))
            person_ids = {external_id: person_id for person_id, external_id in rows}
            subscriptions = [
                {
                    "person_id": person_ids[str(chat_id)],
                    "channel": "telegram",
                    "chat_id": str(chat_id),
                    "active": True,
                    "stories": True,
                    "announcements": True,
                    "commune_code": SAMPLE_COMMUNE if n < sample else OTHER_COMMUNE,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, chat_id in enumerate(chat_ids)
            ]
            await connection.execute(insert(Subscription), subscriptions)
    finally:
        await engine.dispose()


# --- Our bot -------------------------------------------------------------------------------


def bot_settings(fake_url: str, limit: int, database_url: str, workdir: Path) -> Settings:

    rate = limit or PAID_LIMIT
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=TOKEN,  # type: ignore[arg-type]
        telegram_api_base_url=fake_url,
        telegram_broadcast_rate=rate,
        telegram_paid_broadcast=rate > FREE_LIMIT,
        zalo_bot_token=None,
        database_url=database_url,
        media_dir=workdir / "media",
        log_level="WARNING",
    )


async def schedule_announcement(runtime: Runtime, key: str, communes: list[int]) -> int:
    """One announcement due now, started (rendered, one outbox row per recipient)."""

    now = datetime.now(UTC)
    async with runtime.sessions() as session, session.begin():
        broadcast = await create_broadcast(
            session,
            Broadcast(
                key=key,
                kind=BroadcastKind.ANNOUNCEMENT,
                announcements=True,
                commune_codes=communes,
                title=key,
                text=ANNOUNCEMENT,
                scheduled_at=now,
            ),
        )
        if broadcast is None or broadcast.id is None:
            raise BenchError(f"broadcast {key} was not created")
        broadcast_id = broadcast.id
    await start_due(runtime.services, runtime.sessions, now)
    return broadcast_id


async def delivery_statuses(runtime: Runtime, broadcast_id: int) -> dict[str, int]:

    async with runtime.sessions() as session:
        counts = await delivery_counts(session, broadcast_id)
    return {str(status): count for status, count in counts.items()}


async def wait_recorded(runtime: Runtime, broadcast_id: int, deadline: float) -> bool:
    """Until no delivery of the broadcast is pending or being sent, or the `deadline`."""
    while True:
        counts = await delivery_statuses(runtime, broadcast_id)
        if counts["pending"] + counts["sending"] == 0:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)


def unlimited_dispatcher(runtime: Runtime) -> Dispatcher:
    """Runtime.build_dispatcher's dispatcher with no Telegram limit to speak of."""
    return runtime.build_dispatcher(telegram_rate=UNLIMITED_RATE)


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    limit: int
    chat_ids: list[int]
    communes: list[int]
    baseline: bool


@dataclass(frozen=True)
class Dispatched:
    """How a dispatcher's run went: CPU used, and whether everything went out in time."""

    cpu: float
    served: bool
    recorded: bool


async def dispatch(
    runtime: Runtime,
    dispatcher: Dispatcher,
    fake: FakeServer,
    spec: PhaseSpec,
    broadcast_id: int,
    profile: Path | None,
) -> Dispatched:
    """Run `dispatcher` until the fake has served every chat and every outcome is written."""
    deadline = deadline_for(len(spec.chat_ids), spec.limit)
    stop = asyncio.Event()
    profiler = cProfile.Profile() if profile is not None else None
    cpu_before = time.process_time()
    if profiler is not None:
        profiler.enable()
    dispatching = asyncio.create_task(dispatcher.run(stop))
    try:
        served = await fake.wait_served(len(spec.chat_ids), deadline)
        recorded = served and await wait_recorded(runtime, broadcast_id, deadline)
    finally:
        stop.set()
        await dispatching
        if profiler is not None:
            profiler.disable()
    cpu = time.process_time() - cpu_before
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    return Dispatched(cpu, served, recorded)


async def run_ours(
    spec: PhaseSpec, fake: FakeServer, database_url: str, workdir: Path, profile: Path | None
) -> tuple[Measurement, str]:
    """Our dispatcher delivering one announcement to the phase's chats; and its message text."""
    runtime = build_runtime(bot_settings(fake.url, spec.limit, database_url, workdir))
    telegram = runtime.channels["telegram"]
    assert isinstance(telegram, TelegramChannel)
    await telegram.application.initialize()
    try:
        started = time.perf_counter()
        broadcast_id = await schedule_announcement(runtime, f"bench:{spec.name}", spec.communes)
        setup = time.perf_counter() - started
        written = sum((await delivery_statuses(runtime, broadcast_id)).values())
        text = await announcement_text(runtime, broadcast_id)
        await fake.reset()
        dispatcher = runtime.build_dispatcher() if spec.limit else unlimited_dispatcher(runtime)
        outcome = await dispatch(runtime, dispatcher, fake, spec, broadcast_id, profile)
        stats = await fake.stats()
        final = await delivery_statuses(runtime, broadcast_id)
    finally:
        await telegram.stop()
        await runtime.engine.dispose()
    lost = never_served(stats, spec.chat_ids)
    measurement = Measurement(
        spec.name, "guongsang", spec.limit, len(spec.chat_ids), stats, outcome.cpu, lost
    )
    measurement.notes.append(
        f"{written} deliveries written by start_due in {setup:.2f} s; "
        f"dispatcher: {dispatcher.stats.sent} sent, {dispatcher.stats.retried} retried, "
        f"{dispatcher.stats.failed} failed"
    )
    check_ours(measurement, written, final, outcome)
    return measurement, text


async def announcement_text(runtime: Runtime, broadcast_id: int) -> str:

    async with runtime.sessions() as session:
        payloads = await broadcast_payloads(session, broadcast_id)
    return str(payloads[runtime.settings.default_locale]["text"])


def check_ours(
    measurement: Measurement, written: int, final: dict[str, int], outcome: Dispatched
) -> None:
    errors = measurement.errors
    if written != measurement.expected:
        errors.append(f"{written} outbox rows written for {measurement.expected} subscribers")
    if not outcome.served:
        errors.append("not every subscriber was served before the deadline")
    elif not outcome.recorded:
        errors.append("the outcomes were not all recorded before the deadline")
    if measurement.lost:
        errors.append(f"{measurement.lost} subscriber(s) never received the announcement")
    if measurement.duplicates:
        errors.append(f"{measurement.duplicates} duplicate message(s)")
    unsent = {status: n for status, n in final.items() if status != "sent" and n}
    if unsent:
        errors.append(f"outbox rows not sent at the end: {unsent}")


# --- The baseline: a plain python-telegram-bot loop ----------------------------------------


async def run_baseline(spec: PhaseSpec, fake: FakeServer, text: str) -> Measurement:
    """``bot.send_message`` for each chat in turn, paced by ``AIORateLimiter``."""

    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{fake.url}/bot")
        .rate_limiter(
            AIORateLimiter(overall_max_rate=spec.limit, overall_time_period=1, max_retries=5)
        )
        .build()
    )
    await application.initialize()
    failures: list[str] = []
    try:
        await fake.reset()
        cpu_before = time.process_time()
        for chat_id in spec.chat_ids:
            try:
                await application.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)
            except TelegramError as error:
                failures.append(f"{chat_id}: {error!r}")
        cpu = time.process_time() - cpu_before
        stats = await fake.stats()
    finally:
        await application.shutdown()
    measurement = Measurement(
        spec.name,
        "ptb-loop",
        spec.limit,
        len(spec.chat_ids),
        stats,
        cpu,
        lost=never_served(stats, spec.chat_ids),
    )
    if failures:
        measurement.notes.append(f"{len(failures)} send(s) failed, e.g. {failures[0]}")
    return measurement


# --- Putting it together -------------------------------------------------------------------


def phases(args: argparse.Namespace) -> list[PhaseSpec]:
    chat_ids = [FIRST_CHAT_ID + n for n in range(args.subscribers)]
    sample = chat_ids[: args.sample]
    return [
        PhaseSpec("30/s sample", FREE_LIMIT, sample, [SAMPLE_COMMUNE], baseline=True),
        PhaseSpec("1,000/s full", PAID_LIMIT, chat_ids, [], baseline=True),
        PhaseSpec("no limit", NO_LIMIT, chat_ids, [], baseline=False),
    ]


async def run_phase(
    spec: PhaseSpec, database_url: str, workdir: Path, profile: Path | None
) -> list[Measurement]:
    limit = f"{spec.limit}/s" if spec.limit else "no limit"
    print(f"… {spec.name}: {len(spec.chat_ids)} messages, {limit}", file=sys.stderr, flush=True)
    async with FakeServer(spec.limit) as fake:
        ours, text = await run_ours(spec, fake, database_url, workdir, profile)
        if not spec.baseline:
            return [ours]
        return [ours, await run_baseline(spec, fake, text)]


def _cell(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def print_results(args: argparse.Namespace, database: str, results: list[Measurement]) -> None:
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; database: {database}")
    print(
        f"{args.subscribers} subscribers (the 1,000/s run and the ceiling), "
        f"{args.sample} in the 30/s sample; the fake in its own process"
    )
    print()
    header = (
        f"{'phase':<13} {'sender':<9} {'messages':>8} {'seconds':>7} {'rate/s':>8} "
        f"{'rate/limit':>10} {'slowest s':>9} {'429s':>5} {'dups':>5} {'lost':>5} "
        f"{'CPU s/1k':>8} {'fake CPU':>8}"
    )
    print(header)
    print("-" * len(header))
    for m in results:
        print(
            f"{m.phase:<13} {m.sender:<9} {m.messages:>8} {m.stats.span:>7.2f} {m.rate:>8.1f} "
            f"{_cell(m.ratio, '.3f'):>10} {_cell(m.stats.slowest_second(), 'd'):>9} "
            f"{m.rejected:>5} {m.duplicates:>5} {m.lost:>5} {m.cpu_per_thousand:>8.3f} "
            f"{_cell(m.fake_share, '.0%'):>8}"
        )
    print(
        "(seconds: first to last send accepted by the fake; rate: (messages - 1) / seconds; "
        "slowest s: fewest sends in one complete second; CPU: this process, all threads; "
        "fake CPU: share of one core)"
    )
    for m in results:
        for note in m.notes:
            print(f"  {m.phase}, {m.sender}: {note}")
    print()
    print(target_line(results))


def target_line(results: list[Measurement]) -> str:
    full = next((m for m in results if m.sender == "guongsang" and m.limit == PAID_LIMIT), None)
    if full is None or full.ratio is None:
        return "target: not measured"
    clean = not full.errors and full.lost == 0 and full.duplicates == 0
    met = full.ratio >= TARGET_RATIO and clean
    return (
        f"target (>= {TARGET_RATIO} of {PAID_LIMIT}/s, nothing lost or repeated): "
        f"{'met' if met else 'NOT met'} ({full.ratio:.3f} of the limit, {full.lost} lost, "
        f"{full.duplicates} duplicates{', errors' if full.errors else ''})"
    )


def describe_database(database_url: str | None) -> str:
    if database_url is None:
        return "sqlite+aiosqlite (a new file in a temporary directory)"
    url = make_url(database_url)
    return f"{url.drivername} (a scratch database on {url.host}:{url.port or 5432})"


async def bench(args: argparse.Namespace, workdir: Path) -> int:

    configure_logging("WARNING")
    specs = phases(args)
    results: list[Measurement] = []
    async with scratch_database(args.database_url, workdir) as database_url:
        await db.upgrade(database_url)
        await add_subscribers(database_url, specs[1].chat_ids, args.sample)
        for spec in specs:
            profile = args.profile if args.profile and spec.limit == args.profile_limit else None
            results += await run_phase(spec, database_url, workdir, profile)
    print_results(args, describe_database(args.database_url), results)
    failed = False
    for m in results:
        if m.sender != "guongsang":
            continue
        for error in m.errors:
            print(f"ERROR: {m.phase}, {m.sender}: {error}")
            failed = True
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--subscribers",
        type=int,
        default=DEFAULT_SUBSCRIBERS,
        help=f"subscribers of the 1,000/s run and the ceiling (default {DEFAULT_SUBSCRIBERS})",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help=f"messages of the 30/s sample (default {DEFAULT_SAMPLE})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_SAMPLE} at 30/s and {QUICK_SUBSCRIBERS} at 1,000/s: a smoke run",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to create a scratch database on "
        "(default: a new SQLite file in a temporary directory)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a cProfile of our dispatching in one phase (--profile-phase) to this file",
    )
    parser.add_argument(
        "--profile-phase",
        dest="profile_limit",
        choices=("30", "1000", "none"),
        default="1000",
        help="the phase to profile: its limit (default 1000; none: the ceiling)",
    )
    parser.add_argument(
        "--serve-fake", nargs=2, type=int, metavar=("PORT", "LIMIT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.subscribers, args.sample = QUICK_SUBSCRIBERS, QUICK_SAMPLE
    if args.subscribers < 2 or args.sample < 2:
        parser.error("--subscribers and --sample must be at least 2")
    args.sample = min(args.sample, args.subscribers)
    args.profile_limit = 0 if args.profile_limit == "none" else int(args.profile_limit)
    if args.profile is not None:
        args.profile = args.profile.resolve()
    return args


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_fake:
        port, limit = args.serve_fake
        asyncio.run(serve_fake(port, limit))
        return 0
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="guongsang-bench-"))
    try:
        return asyncio.run(bench(args, workdir))
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
