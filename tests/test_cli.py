"""The `guongsang` command as an operator uses it, in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from alembic import command

from bot import db
from models.people import find_person, roles_of
from models.tables import Role
from tests.webchat import free_port


def guongsang(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "DATABASE_URL", "ADMIN_IDS"))
    }  # fmt: skip
    env["DATABASE_URL"] = database_url
    env["MEDIA_DIR"] = str(cwd / "media")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip


def test_run_without_a_token_starts_the_web_chat_sandbox(tmp_path: Path) -> None:
    """What the README's run command does on a fresh machine."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    env.update(HTTP_PORT=str(port), MEDIA_DIR=str(tmp_path / "data" / "media"))
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert bot.stdout is not None
        lines = [bot.stdout.readline() for _ in range(5)]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as health:
            assert json.load(health)["channels"] == ["web"]
    finally:
        bot.send_signal(signal.SIGTERM)
        bot.wait(timeout=30)
    banner = "".join(lines)
    assert f"web chat at http://127.0.0.1:{port}/chat — sandbox" in banner
    assert "sqlite+aiosqlite:///./data/guongsang.db" in banner
    assert (tmp_path / "data" / "guongsang.db").is_file()
    assert bot.returncode == 0


def test_run_on_a_port_in_use_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
        env.update(HTTP_PORT=str(port), MEDIA_DIR=str(tmp_path / "media"))
        result = subprocess.run(
            [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"Cannot listen on http://127.0.0.1:{port}" in result.stderr
    assert "HTTP_PORT" in result.stderr
    assert "Traceback" not in result.stderr


async def test_role_grant_and_revoke(database_url: str, tmp_path: Path) -> None:
    granted = guongsang("role", "grant", "telegram:42", "officer",
                        database_url=database_url, cwd=tmp_path)  # fmt: skip
    assert granted.returncode == 0, granted.stderr
    assert "granted" in granted.stdout
    again = guongsang("role", "grant", "telegram:42", "officer",
                      database_url=database_url, cwd=tmp_path)  # fmt: skip
    assert "Nothing to change" in again.stdout

    engine = db.make_engine(database_url)
    async with db.session_factory(engine)() as session:
        person = await find_person(session, "telegram", "42")
        assert person is not None and person.id is not None
        assert await roles_of(session, person.id) == {Role.OFFICER}

    revoked = guongsang("role", "revoke", "telegram:42", "officer",
                        database_url=database_url, cwd=tmp_path)  # fmt: skip
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    async with db.session_factory(engine)() as session:
        assert await roles_of(session, person.id) == frozenset()
    await engine.dispose()


@pytest.mark.parametrize("bad", ["42", "telegram:", "telegram:42 nobody"])
def test_role_grant_refuses_bad_input(bad: str, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    person, *role = bad.split()
    result = guongsang("role", "grant", person, *(role or ["officer"]), database_url=url,
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2


def test_db_upgrade_is_idempotent_and_models_match_migrations(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    for _ in range(2):
        result = guongsang("db", "upgrade", database_url=url, cwd=tmp_path)
        assert result.returncode == 0 and "up to date" in result.stdout
    command.check(db.alembic_config(url))  # raises if the models drifted from the migrations
