"""Throughput and latency of complete report conversations, against a bare echo bot.

Run from the repository root (it prints figures and asserts nothing about time):

    python bench/updates.py              # 50 users, 300 conversations, 3 rounds, SQLite
    python bench/updates.py --users 2 --conversations 300   # light load: latency
    python bench/updates.py --quick      # 60 conversations, one round: a smoke run (30 s)
    python bench/updates.py --database-url postgresql+asyncpg://user@127.0.0.1:5432/bench
    python bench/updates.py --profile /tmp/bot.prof   # the bot under cProfile (slower)

Each round measures the echo bot, then ours, each in a fresh process; the verdict uses
the median of the rounds' ratios, because a shared machine's speed drifts by ±20 % from
one minute to the next. A default round lasts about 15 s plus 3000 / (our bot's updates
per second): about 25 s at the time of writing on a 2-core machine. It exits non-zero,
with ERROR lines, when an answer is missing or wrong, or when the reports stored are not
one per conversation.
`--profile` profiles only the bot's event-loop thread, and SQLAlchemy's greenlet switches
garble cProfile's cumulative times: read `tottime`, or attach py-spy (`--gil`) instead.

The fake Bot API server (`tests/fakes/telegram_api.py`) and the simulated users run in
this process; each bot under test runs in its own subprocess, polling the fake:

- ``guongsang``: the real bot, ``python -m bot run``, on a fresh SQLite file in a temporary
  directory (or ``--database-url``), with the flood and daily limits lifted, and Telegram's
  per-chat limits off in the fake and in the bot (a user here answers at machine speed;
  `bench/replies.py` measures replies at a human pace within those limits);
- ``echo``: a bare python-telegram-bot ``Application`` (default settings, so updates are
  handled one at a time) that answers each text with the same text: the ceiling a
  python-telegram-bot bot can reach against this fake on this machine.

Each user plays whole conversations (the anonymous report without photos: 10 updates, each
answered by exactly one message) and waits for every answer before sending the next update.
Latency is the time from an update being queued at the fake to the fake receiving the bot's
answer. The echo bot gets the same number of text updates from the same number of users.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import math
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aiohttp import web  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.settings import Settings  # noqa: E402
from tests.fakes.telegram_api import (  # noqa: E402
    FakeTelegram,
    FakeUser,
    JsonDict,
    SentMessage,
    _Chat,
    _Content,
)

TOKEN = "123456:BENCH-TOKEN"  # noqa: S105 - a made-up token, for the fake only
STORY = "Chị đã nhặt được ví tiền và trả lại cho người đánh rơi ngay trong buổi chiều."
UPDATES_PER_CONVERSATION = 10
CONFIRMATION_MARK = "GS-"
QUICK_CONVERSATIONS = 60
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
SETTLE_SECONDS = 0.3  # after the last answer: time for any unexpected extra message to arrive
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
DEFAULT_ROUNDS = 3

_request_started: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "request_started", default=None
)
_children: list[subprocess.Popen[bytes]] = []


class BenchError(Exception):
    """The benchmark could not run as designed."""


# --- The fake, with timestamps -------------------------------------------------------------


class TimedFakeTelegram(FakeTelegram):
    """The fake Bot API server, noting when updates are queued and when answers arrive.

    Answers are timed when the fake starts handling the bot's request; the driver waits
    for them on futures that the arrival resolves, not by polling.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queued_at: dict[int, float] = {}  # update_id -> perf_counter()
        self.answers_at: dict[int, list[float]] = {}  # chat_id -> perf_counter() per message
        self._waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}

    async def _handle_api(self, request: web.Request) -> web.Response:
        _request_started.set(time.perf_counter())
        return await super()._handle_api(request)

    async def _push_update(self, payload: JsonDict) -> JsonDict:
        queued = time.perf_counter()  # the update is appended before the first await
        update = await super()._push_update(payload)
        self.queued_at[update["update_id"]] = queued
        return update

    def _store_sent(
        self,
        chat: _Chat,
        method: str,
        content: _Content,
        reply_markup: JsonDict | None,
        media_group_id: str | None = None,
    ) -> SentMessage:
        sent = super()._store_sent(chat, method, content, reply_markup, media_group_id)
        times = self.answers_at.setdefault(chat.id, [])
        times.append(_request_started.get() or time.perf_counter())
        index, waiter = self._waiters.get(chat.id, (-1, None))
        if waiter is not None and index < len(times) and not waiter.done():
            waiter.set_result(None)
        return sent

    def answers_in(self, chat_id: int) -> int:
        return len(self.answers_at.get(chat_id, []))

    async def answer_time(self, chat_id: int, index: int, within: float) -> float | None:
        """When message ``index`` (0-based) of the chat arrived; None after ``within`` s."""
        times = self.answers_at.setdefault(chat_id, [])
        if index >= len(times):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[chat_id] = (index, waiter)
            try:
                async with asyncio.timeout(within):
                    await waiter
            except TimeoutError:
                return None
            finally:
                self._waiters.pop(chat_id, None)
        return times[index]


# --- What the users say --------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One update: a text or a button press, and what its answer must contain (if checked)."""

    kind: str  # "text" or "press"
    value: str
    expect: str | None = None


def report_conversation(user_no: int, number: int) -> list[Step]:
    """The anonymous report without photos: 10 updates, 10 answers, the last with a code."""
    return [
        Step("text", "/start report"),
        Step("press", "r:kind:individual"),
        Step("text", f"Hoàng Thị Lan {user_no}-{number}"),
        Step("press", "r:group:farmer"),
        Step("text", "dong dang"),
        Step("press", "r:commune:6184"),
        Step("text", STORY),
        Step("press", "r:photos:skip"),
        Step("press", "r:identity:anonymous"),
        Step("press", "r:summary:confirm", expect=CONFIRMATION_MARK),
    ]


def report_script(user_no: int, conversations: int) -> list[Step]:
    return [step for n in range(conversations) for step in report_conversation(user_no, n)]


def echo_script(user_no: int, conversations: int) -> list[Step]:
    texts = (f"echo {user_no}-{n}" for n in range(conversations * UPDATES_PER_CONVERSATION))
    return [Step("text", text, expect=text) for text in texts]


type Script = Callable[[int, int], list[Step]]


# --- Measuring -----------------------------------------------------------------------------


@dataclass
class Phase:
    """The figures of one bot's measured run."""

    label: str
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    bot_cpu: float | None = None  # seconds of CPU used by the bot's process
    driver_cpu: float = 0.0  # seconds of CPU used by this process (fake and users)

    @property
    def handled(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.handled / self.wall if self.wall > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1] * 1000


async def play(
    fake: TimedFakeTelegram, user: FakeUser, script: Sequence[Step], phase: Phase, within: float
) -> None:
    """Send each step, wait for its one answer, note the latency; stop at the first failure."""
    for step in script:
        index = fake.answers_in(user.chat_id)
        try:
            if step.kind == "press":
                update = await user.press(step.value)
            else:
                update = await user.send_text(step.value)
        except AssertionError as error:  # the button to press is not there
            phase.errors.append(f"user {user.id}: {error}")
            return
        phase.sent += 1
        queued = fake.queued_at.pop(update["update_id"])
        answered = await fake.answer_time(user.chat_id, index, within)
        if answered is None:
            phase.errors.append(f"user {user.id}: no answer to {step.value!r} in {within}s")
            return
        phase.latencies.append(answered - queued)
        if step.expect is not None:
            text = user.inbox[index].plain_text or ""
            if step.expect not in text:
                phase.errors.append(
                    f"user {user.id}: the answer to {step.value!r} lacks {step.expect!r}: {text!r}"
                )
                return


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal positive shares (fewer parts if needed)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def run_users(
    fake: TimedFakeTelegram,
    script: Script,
    conversations: int,
    users: int,
    first_user_id: int,
    phase: Phase,
    within: float,
) -> None:
    players = []
    for user_no, count in enumerate(shares(conversations, users)):
        user = fake.user(user_id=first_user_id + user_no, first_name=f"Bench {user_no}")
        players.append(play(fake, user, script(user_no, count), phase, within))
    await asyncio.gather(*players)


def extra_answers(fake: TimedFakeTelegram, expected: int) -> int:
    """Messages the bot sent beyond one per update."""
    return sum(len(times) for times in fake.answers_at.values()) - expected


# --- The bots' processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This process's environment without any of the bot's settings."""
    settings = {name.upper() for name in Settings.model_fields}
    return {key: value for key, value in os.environ.items() if key.upper() not in settings}


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BotProcess:
    """A bot under test in its own process, its output kept in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process: subprocess.Popen[bytes] = subprocess.Popen(  # noqa: S603
                argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )
        _children.append(self.process)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(f"    {line}" for line in text[-lines:]) or "    (empty)"

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.process.pid)

    async def wait_ready(self, fake: FakeTelegram) -> None:
        """Until the bot's first long poll waits at the fake (start-up polling is fine here)."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while fake.waiting_polls == 0:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with code {self.process.returncode} before polling; "
                    f"its output:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not poll within {READY_TIMEOUT_SECONDS}s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGTERM (a graceful stop, which also lets cProfile write), then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)


def kill_children() -> None:
    """Last resort, whatever went wrong: no bot outlives the benchmark."""
    for process in _children:
        if process.poll() is None:
            process.terminate()
    for process in _children:
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class BotUnderTest:
    label: str
    argv: list[str]
    env: dict[str, str]
    script: Script
    warmup_conversations: int


async def measure(bot: BotUnderTest, args: argparse.Namespace, workdir: Path) -> Phase:
    phase = Phase(bot.label)
    async with TimedFakeTelegram(time_scale=0.0) as fake:  # no per-chat limits: see above
        env = {**bot.env, "TELEGRAM_API_BASE_URL": fake.base_url}
        process = BotProcess(bot.label, bot.argv, env, workdir)
        try:
            await process.wait_ready(fake)
            warmup = Phase(f"{bot.label} warm-up")
            await run_users(
                fake,
                bot.script,
                bot.warmup_conversations,
                bot.warmup_conversations,
                800_000,
                warmup,
                args.reply_timeout,
            )
            if warmup.errors:
                failures = "\n  ".join(warmup.errors)
                raise BenchError(
                    f"{bot.label} failed the warm-up:\n  {failures}\n"
                    f"its output:\n{process.log_tail()}"
                )
            warmed = warmup.sent
            calls_before = len(fake.calls)
            cpu_before, driver_before = process.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            await run_users(
                fake, bot.script, args.conversations, args.users, 1, phase, args.reply_timeout
            )
            phase.wall = time.perf_counter() - started
            cpu_after = process.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                phase.bot_cpu = cpu_after - cpu_before
            phase.driver_cpu = time.process_time() - driver_before
            await asyncio.sleep(SETTLE_SECONDS)
            extra = extra_answers(fake, warmed + phase.sent)
            if extra > 0:
                phase.errors.append(f"{extra} message(s) beyond one answer per update")
            failed = [c for c in fake.calls[calls_before:] if c.status != 200]
            for call in failed[:5]:
                phase.errors.append(f"{call.method} answered {call.status}: {call.response}")
            if process.process.poll() is not None:
                phase.errors.append(f"{bot.label} exited early")
            if phase.errors:
                phase.errors.append(f"the last lines of its output:\n{process.log_tail()}")
        finally:
            await process.stop()
    return phase


# --- Reports stored ------------------------------------------------------------------------


def sqlite_path(database_url: str, workdir: Path) -> Path | None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return path if path.is_absolute() else workdir / path


async def count_reports(database_url: str, workdir: Path) -> int:
    """Rows of the `report` table; 0 when the database or the table does not exist yet."""
    path = sqlite_path(database_url, workdir)
    if path is not None:
        if not path.exists():
            return 0
        with contextlib.closing(sqlite3.connect(path)) as connection:
            try:
                return int(connection.execute("SELECT count(*) FROM report").fetchone()[0])
            except sqlite3.OperationalError:
                return 0
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    from bot.db import make_engine

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT count(*) FROM report"))).scalar_one())
    except ProgrammingError:  # no table before the first migration
        return 0
    finally:
        await engine.dispose()


def describe_database(database_url: str) -> str:
    url = make_url(database_url)
    if sqlite_path(database_url, Path()) is not None:
        return f"{url.drivername} (a new file in a temporary directory)"
    return f"{url.drivername} ({url.host}:{url.port or ''}/{url.database})"


# --- The echo bot --------------------------------------------------------------------------


def run_echo_bot() -> None:
    """A bare python-telegram-bot bot: every text answered with itself. Default settings.

    It reads the token and the Bot API's address from the environment, as our bot does.
    """
    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    base_url = os.environ["TELEGRAM_API_BASE_URL"].rstrip("/")
    application = (
        ApplicationBuilder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(f"{base_url}/bot")
        .base_file_url(f"{base_url}/file/bot")
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.run_polling()


# --- Putting it together -------------------------------------------------------------------


def bots_under_test(args: argparse.Namespace, workdir: Path) -> tuple[BotUnderTest, BotUnderTest]:
    """The echo bot and ours, as commands and environments (the fake's address comes later)."""
    base_env = {**clean_environment(), "TELEGRAM_BOT_TOKEN": TOKEN}
    echo = BotUnderTest(
        label="echo",
        argv=[sys.executable, str(Path(__file__).resolve()), "--echo-bot"],
        env=base_env,
        script=echo_script,
        warmup_conversations=args.warmup,
    )
    profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
    ours = BotUnderTest(
        label="guongsang",
        argv=[sys.executable, *profile, "-m", "bot", "run"],
        env={
            **base_env,
            "DATABASE_URL": args.database_url,
            "MEDIA_DIR": str(workdir / "media"),
            "HTTP_PORT": str(free_port()),
            "MESSAGES_PER_MINUTE": "100000",
            "REPORTS_PER_DAY": "100000",
            "TELEGRAM_CHAT_INTERVAL": "0",
            "TELEGRAM_GROUP_INTERVAL": "0",
            "LOG_LEVEL": "WARNING",
        },
        script=report_script,
        warmup_conversations=args.warmup,
    )
    return echo, ours


def print_results(args: argparse.Namespace, rounds: list[tuple[Phase, Phase]]) -> None:
    print(
        f"Python {sys.version.split()[0]} ({sys.implementation.name}), {os.cpu_count()} CPUs; "
        f"database: {describe_database(args.database_url)}"
    )
    print(
        f"{args.users} concurrent users; {args.conversations} conversations "
        f"x {UPDATES_PER_CONVERSATION} updates (+{args.warmup} warm-up conversations, not counted)"
        f"; {len(rounds)} round(s), the echo bot first in each"
    )
    print()
    header = (
        f"{'round':<5} {'bot':<10} {'updates':>7} {'wall s':>7} {'updates/s':>9} {'p50 ms':>7} "
        f"{'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'bot CPU':>7} {'fake CPU':>8} {'ratio':>5}"
    )
    print(header)
    print("-" * len(header))
    for number, (echo, ours) in enumerate(rounds, 1):
        for phase in (echo, ours):
            ratio = f"{round_ratio(echo, ours):.2f}" if phase is ours else ""
            bot_cpu = f"{phase.bot_cpu / phase.wall:.0%}" if phase.bot_cpu is not None else "?"
            print(
                f"{number:<5} {phase.label:<10} {phase.handled:>7} {phase.wall:>7.2f} "
                f"{phase.rate:>9.1f} {phase.percentile_ms(50):>7.1f} "
                f"{phase.percentile_ms(90):>7.1f} {phase.percentile_ms(99):>7.1f} "
                f"{phase.percentile_ms(100):>7.1f} {bot_cpu:>7} "
                f"{phase.driver_cpu / phase.wall:>8.0%} {ratio:>5}"
            )
    print("(CPU: share of one core, during the measured run; fake CPU includes the users)")
    print()
    ratio = statistics.median(round_ratio(echo, ours) for echo, ours in rounds)
    p99 = pooled([ours for _echo, ours in rounds]).percentile_ms(99)
    ratio_met = "met" if ratio >= TARGET_RATIO else "NOT met"
    p99_met = "met" if p99 < TARGET_P99_MS else "NOT met"
    print(f"ratio (guongsang updates/s / echo updates/s), median of the rounds: {ratio:.2f}")
    print(f"target ratio >= {TARGET_RATIO}: {ratio_met} ({ratio:.2f})")
    print(f"target p99 < {TARGET_P99_MS:.0f} ms (all rounds): {p99_met} ({p99:.1f} ms)")


def round_ratio(echo: Phase, ours: Phase) -> float:
    return ours.rate / echo.rate if echo.rate > 0 else math.nan


def pooled(phases: list[Phase]) -> Phase:
    """The phases' latencies together, for percentiles over every round."""
    return Phase(phases[0].label, latencies=[x for phase in phases for x in phase.latencies])


async def bench(args: argparse.Namespace, workdir: Path) -> int:
    if args.database_url is None:
        args.database_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    echo_bot, our_bot = bots_under_test(args, workdir)
    reports_before = await count_reports(args.database_url, workdir)
    rounds = [
        (await measure(echo_bot, args, workdir), await measure(our_bot, args, workdir))
        for _ in range(args.rounds)
    ]
    reports = await count_reports(args.database_url, workdir) - reports_before
    expected = args.rounds * (args.conversations + args.warmup)
    print_results(args, rounds)
    print(
        f"reports stored: {reports} (expected {expected}: {args.rounds} x "
        f"({args.conversations} conversations + {args.warmup} warm-up))"
    )
    failed = False
    for phase in (phase for pair in rounds for phase in pair):
        unanswered = phase.sent - phase.handled
        wanted = args.conversations * UPDATES_PER_CONVERSATION
        if phase.handled != wanted or unanswered:
            print(f"ERROR: {phase.label}: {phase.handled} of {wanted} updates answered")
            failed = True
        shown = [*phase.errors[:10], *phase.errors[-1:]] if len(phase.errors) > 11 else phase.errors
        for error in shown:
            print(f"ERROR: {phase.label}: {error}")
            failed = True
    if reports != expected:
        print(f"ERROR: {reports} reports stored, expected {expected}")
        failed = True
    if args.profile:
        print(f"profile of the bot written to {args.profile}")
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    parser.add_argument(
        "--conversations", type=int, default=300, help="measured conversations (default 300)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"rounds of echo then ours (default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_CONVERSATIONS} conversations, one round: a smoke run",
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="conversations before measuring (default 5)"
    )
    parser.add_argument(
        "--database-url",
        help="the bot's DATABASE_URL (default: a new SQLite file in a temporary directory)",
    )
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for each answer before counting it as missing (default 30)",
    )
    parser.add_argument(
        "--profile", type=Path, help="run our bot under cProfile, writing to this file"
    )
    parser.add_argument("--echo-bot", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations, args.rounds = QUICK_CONVERSATIONS, 1
    if args.profile is not None:
        args.profile, args.rounds = args.profile.resolve(), 1
    if min(args.users, args.conversations, args.warmup, args.rounds) < 1:
        parser.error("--users, --conversations, --warmup and --rounds must be at least 1")
    return args


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.echo_bot:
        run_echo_bot()
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
        kill_children()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
