"""The flood guard counts what costs the service, on a clock the test controls."""

from __future__ import annotations

from handlers.flood import QUIET_SECONDS, FloodGuard, Verdict
from handlers.messages import Attachment, Inbound, InboundKind


async def never_downloaded(max_bytes: int) -> bytes:
    raise AssertionError("the flood guard never downloads")


def inbound(kind: InboundKind = InboundKind.TEXT, album: str | None = None) -> Inbound:
    attachment = None
    if kind is InboundKind.PHOTO:
        attachment = Attachment("f", 1, "image/jpeg", None, never_downloaded, group_id=album)
    return Inbound(
        channel="telegram",
        chat_id="7",
        user_id="7",
        update_id="1",
        kind=kind,
        text="xin chào" if kind is InboundKind.TEXT else "",
        payload="m:approve:1:1" if kind is InboundKind.BUTTON else "",
        attachment=attachment,
    )


def verdicts(guard: FloodGuard, messages: list[Inbound], now: float = 0.0) -> list[Verdict]:
    return [guard.check_inbound(message, now) for message in messages]


def test_forty_typed_messages_at_once_get_one_warning_then_silence() -> None:
    guard = FloodGuard(per_minute=30)
    seen = verdicts(guard, [inbound()] * 40)
    assert seen[:30] == [Verdict.ALLOW] * 30
    assert seen[30:] == [Verdict.WARN] + [Verdict.DROP] * 9


def test_after_the_quiet_time_the_person_is_read_again() -> None:
    guard = FloodGuard(per_minute=30)
    verdicts(guard, [inbound()] * 32)
    assert guard.check_inbound(inbound(), QUIET_SECONDS - 1) is Verdict.DROP
    assert guard.check_inbound(inbound(), QUIET_SECONDS + 0.1) is Verdict.ALLOW


def test_button_presses_never_count() -> None:
    guard = FloodGuard(per_minute=30)
    presses = verdicts(guard, [inbound(InboundKind.BUTTON)] * 200)
    assert set(presses) == {Verdict.ALLOW}
    assert verdicts(guard, [inbound()] * 30) == [Verdict.ALLOW] * 30


def test_an_album_of_ten_counts_once() -> None:
    guard = FloodGuard(per_minute=3)
    albums = [inbound(InboundKind.PHOTO, album=name) for name in ("a", "b", "c") for _ in range(10)]
    assert set(verdicts(guard, albums)) == {Verdict.ALLOW}
    assert guard.check_inbound(inbound(InboundKind.PHOTO), 0.0) is Verdict.WARN


def test_a_brisk_human_pace_is_never_stopped() -> None:
    """A typed message every two seconds for ten minutes, with presses in between."""
    guard = FloodGuard(per_minute=30)
    seen = []
    for second in range(0, 600, 2):
        seen.append(guard.check_inbound(inbound(), float(second)))
        seen.append(guard.check_inbound(inbound(InboundKind.BUTTON), second + 1.0))
    assert set(seen) == {Verdict.ALLOW}
