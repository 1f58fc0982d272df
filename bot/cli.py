"""`guongsang` (also `python -m bot`): run the bot, migrate the database, manage roles."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot import db, operations
from bot.app import run
from bot.logs import configure_logging
from bot.person_ids import parse_person
from bot.settings import ConfigurationError, Settings
from models.communes import provinces
from models.people import grant_role, revoke_role
from models.tables import Role

RUN_DESCRIPTION = """\
Run the bot: the web chat always, Telegram and Zalo when their token is set. The database
is migrated first. Settings come from the environment or ./.env; .env.example explains
every one. The main ones:

  TELEGRAM_BOT_TOKEN    the bot's token from @BotFather (unset: no Telegram)
  ZALO_BOT_TOKEN        the bot's token from Zalo Bot Creator (unset: no Zalo)
  DATABASE_URL          sqlite+aiosqlite:///./data/guongsang.db (the default) or
                        postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE
  PROVINCE_CODE         20 (Lạng Sơn); `guongsang provinces` lists the codes
  ADMIN_IDS             bootstrap admins, e.g. telegram:123456789,zalo:2d0d9f8dbd7a5424d16b
  HTTP_HOST, HTTP_PORT  where the web chat, webhooks and /healthz listen (127.0.0.1, 8080)
  LOG_LEVEL, LOG_JSON   INFO; true for one JSON object per line
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guongsang", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run",
        help="run the bot (migrates the database first)",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands.add_parser("provinces", help="list the province codes PROVINCE_CODE accepts")
    database = commands.add_parser("db", help="database maintenance")
    database.add_subparsers(dest="db_command", required=True).add_parser(
        "upgrade", help="apply every pending migration"
    )
    role = commands.add_parser("role", help="grant or revoke a role")
    role_commands = role.add_subparsers(dest="role_command", required=True)
    for action in ("grant", "revoke"):
        sub = role_commands.add_parser(action, help=f"{action} a role")
        sub.add_argument("person", type=_person, help="channel:id, for example telegram:123456789")
        sub.add_argument("role", choices=[r.value for r in Role])
    publish = commands.add_parser("publish", help="publish approved stories")
    publish.add_argument(
        "--now", action="store_true", required=True, help="without waiting for the next slot"
    )
    broadcast = commands.add_parser("broadcast", help="scheduled and past broadcasts")
    broadcast_commands = broadcast.add_subparsers(dest="broadcast_command", required=True)
    broadcast_commands.add_parser("list", help="what is scheduled, running, recently sent")
    status = broadcast_commands.add_parser("status", help="how one broadcast went")
    status.add_argument("id", type=int)
    movement = commands.add_parser("movement", help="emulation movements")
    movement_commands = movement.add_subparsers(dest="movement_command", required=True)
    load = movement_commands.add_parser("import", help="create or update movements from YAML")
    load.add_argument("file", type=Path)
    return parser


def _person(text: str) -> tuple[str, str]:
    try:
        return parse_person(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "provinces":
        for code, name in provinces().items():
            print(f"{code:>3}  {name}")
        return 0
    try:
        settings = Settings()
    except ValidationError as error:
        for problem in error.errors():
            print(_explain(problem), file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_json)
    try:
        created = db.prepare(settings.database_url)
        if created is not None:
            print(f"Created the folder {created}/ for the database (DATABASE_URL's default).")
        if args.command == "run":
            asyncio.run(run(settings))
        elif args.command == "db":
            db.upgrade_sync(settings.database_url)
            print("Database is up to date.")
        elif args.command == "role":
            return asyncio.run(
                _change_role(settings, args.role_command, args.person, Role(args.role))
            )
        else:
            return asyncio.run(operations.run(settings, args))
    except ConfigurationError as error:
        print(error.code, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _explain(problem: ErrorDetails) -> str:
    """One sentence per invalid setting: which variable, what is wrong, what to write."""
    where = ".".join(str(part) for part in problem["loc"]).upper()
    error = problem.get("ctx", {}).get("error")
    reason = str(error) if problem["type"] == "value_error" and error else problem["msg"]
    return f"{where}: {reason} (see .env.example)." if where else f"{reason} (see .env.example)."


async def _change_role(settings: Settings, action: str, person: tuple[str, str], role: Role) -> int:
    channel, external_id = person
    await db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    try:
        async with db.session_factory(engine)() as session, session.begin():
            if action == "grant":
                changed = await grant_role(session, channel, external_id, role, granted_by="cli")
            else:
                changed = await revoke_role(session, channel, external_id, role)
    finally:
        await engine.dispose()
    verb = "granted to" if action == "grant" else "revoked from"
    print(f"Role {role.value} {verb} {channel}:{external_id}." if changed else "Nothing to change.")
    return 0
