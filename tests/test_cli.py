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
from bot.settings import DEFAULT_DATABASE_URL
from models.people import find_person, roles_of
from models.tables import Role
from tests.webchat import free_port


def guongsang(
    *args: str, database_url: str, cwd: Path, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "DATABASE_URL", "ADMIN_IDS", "PROVINCE_CODE"))
    }  # fmt: skip
    env.update(settings, DATABASE_URL=database_url, MEDIA_DIR=str(cwd / "media"))
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
        lines = [bot.stdout.readline() for _ in range(6)]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as health:
            assert json.load(health)["channels"] == ["web"]
    finally:
        bot.send_signal(signal.SIGTERM)
        bot.wait(timeout=30)
    banner = "".join(lines)
    assert lines[0] == "Created the folder data/ for the database (DATABASE_URL's default).\n"
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


@pytest.mark.parametrize(
    ("bad", "advice"),
    [
        ("42", "must be channel:id with channel one of telegram:…, zalo:…, web:…"),
        ("telegram:", "a Telegram id is a number, for example telegram:123456789"),
        ("telegram:abc", "a Telegram id is a number, for example telegram:123456789"),
        ("zalo:", "a Zalo id is the chat_id of the person's log line zalo.message.received"),
        ("zalo:../etc", "a Zalo id is the chat_id"),
        ("web:abc", "a web chat id is a session id of 24 letters"),
        ("facebook:42", "must be channel:id with channel one of telegram:…, zalo:…, web:…"),
        ("telegram:42 nobody", "invalid choice: 'nobody'"),
    ],
)
def test_role_grant_refuses_bad_input(bad: str, advice: str, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    person, _, role = bad.partition(" ")
    result = guongsang("role", "grant", person, role or "officer", database_url=url,
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert advice in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    "person", ["zalo:2d0d9f8dbd7a5424d16b", "web:3q2-7wEVr_kXl0Zp1yUj8BnM.admin"]
)
def test_role_grant_takes_zalo_and_web_ids(person: str, database_url: str, tmp_path: Path) -> None:
    result = guongsang("role", "grant", person, "moderator", database_url=database_url,
                       cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Role moderator granted to {person}." in result.stdout


def test_bad_admin_ids_stop_the_start_with_what_to_write(tmp_path: Path) -> None:
    result = guongsang("run", database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", cwd=tmp_path,
                       ADMIN_IDS="telegram:123,telegram:@someone")  # fmt: skip
    assert_refused(result, "ADMIN_IDS: 'telegram:@someone' is not a telegram id")


def assert_refused(result: subprocess.CompletedProcess[str], advice: str) -> None:
    """Exit code 2 and one sentence on stderr, the one that tells what to do."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    [sentence] = result.stderr.splitlines()
    assert advice in sentence


OTHER_DATABASE_COMMANDS = [
    ["db", "upgrade"],
    ["role", "grant", "telegram:42", "officer"],
    ["publish", "--now"],
    ["broadcast", "list"],
    ["broadcast", "status", "1"],
    ["movement", "import", "movements.yaml"],
]
UNREACHABLE = "postgresql+asyncpg://guongsang:s3cret@127.0.0.1:1/guongsang"


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("foo", "DATABASE_URL: must be postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE "
                "or sqlite+aiosqlite:///PATH (see .env.example)."),
        ("postgresql://postgres@127.0.0.1/test",
         "DATABASE_URL: write postgresql+asyncpg://… instead of postgresql://…"),
        ("postgres://postgres@127.0.0.1/test",
         "DATABASE_URL: write postgresql+asyncpg://… instead of postgres://…"),
        ("sqlite:///./data/guongsang.db",
         "DATABASE_URL: write sqlite+aiosqlite://… instead of sqlite://…"),
        ("mysql+aiomysql://root@127.0.0.1/guongsang", "not mysql+aiomysql://…"),
        (UNREACHABLE, "Cannot connect to the database "
                      "postgresql+asyncpg://guongsang:***@127.0.0.1:1/guongsang"),
    ],
)  # fmt: skip
def test_run_with_a_wrong_database_url_says_what_to_write(
    url: str, advice: str, tmp_path: Path
) -> None:
    result = guongsang("run", database_url=url, cwd=tmp_path)
    assert_refused(result, advice)
    assert "s3cret" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", OTHER_DATABASE_COMMANDS, ids=" ".join)
def test_every_database_command_says_when_the_database_is_unreachable(
    command: list[str], tmp_path: Path
) -> None:
    (tmp_path / "movements.yaml").write_text("movements: []\n")
    assert_refused(
        guongsang(*command, database_url=UNREACHABLE, cwd=tmp_path),
        "check that PostgreSQL runs there and lets this user in, or correct DATABASE_URL.",
    )


@pytest.mark.parametrize("command", [["run"], ["db", "upgrade"]], ids=" ".join)
def test_an_unknown_province_points_to_the_list(command: list[str], tmp_path: Path) -> None:
    result = guongsang(*command, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
                       cwd=tmp_path, PROVINCE_CODE="99")  # fmt: skip
    assert_refused(
        result, "PROVINCE_CODE: 99 is not a province code: `guongsang provinces` lists the 34"
    )
    assert not (tmp_path / "x.db").exists()


def test_provinces_lists_every_code_with_its_name(tmp_path: Path) -> None:
    """Works while PROVINCE_CODE is still wrong: it is how to find the right one."""
    result = guongsang("provinces", database_url="foo", cwd=tmp_path, PROVINCE_CODE="99")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 34
    assert " 20  Tỉnh Lạng Sơn" in lines
    assert "  1  Thành phố Hà Nội" in lines


def test_a_database_in_a_missing_folder_is_refused_not_created_elsewhere(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "db"
    result = guongsang("db", "upgrade", database_url=f"sqlite+aiosqlite:///{missing}/x.db",
                       cwd=tmp_path)  # fmt: skip
    assert_refused(result, f"a folder that does not exist: create it (mkdir -p {missing})")
    assert not (tmp_path / "typo").exists()


def test_the_default_database_folder_is_created_and_said(tmp_path: Path) -> None:
    result = guongsang("db", "upgrade", database_url=DEFAULT_DATABASE_URL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Created the folder data/ for the database (DATABASE_URL's default).",
        "Database is up to date.",
    ]
    assert (tmp_path / "data" / "guongsang.db").is_file()


def test_run_help_lists_the_main_settings(tmp_path: Path) -> None:
    result = guongsang("run", "--help", database_url="foo", cwd=tmp_path)
    assert result.returncode == 0
    for setting in ("TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN", "DATABASE_URL", "PROVINCE_CODE",
                    "ADMIN_IDS", "HTTP_PORT", ".env.example"):  # fmt: skip
        assert setting in result.stdout


def test_db_upgrade_is_idempotent_and_models_match_migrations(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    for _ in range(2):
        result = guongsang("db", "upgrade", database_url=url, cwd=tmp_path)
        assert result.returncode == 0 and "up to date" in result.stdout
    command.check(db.alembic_config(url))  # raises if the models drifted from the migrations
