"""`guongsang` (also `python -m bot`): run the bot, migrate the database, manage roles."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from bot import db, operations
from bot.app import ConfigurationError, run
from bot.logs import configure_logging
from bot.settings import Settings
from models.people import grant_role, revoke_role
from models.tables import Role


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guongsang", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot (migrates the database first)")
    database = commands.add_parser("db", help="database maintenance")
    database.add_subparsers(dest="db_command", required=True).add_parser(
        "upgrade", help="apply every pending migration"
    )
    role = commands.add_parser("role", help="grant or revoke a role")
    role_commands = role.add_subparsers(dest="role_command", required=True)
    for action in ("grant", "revoke"):
        sub = role_commands.add_parser(action, help=f"{action} a role")
        sub.add_argument("person", help="channel:id, for example telegram:123456789")
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print("The configuration is not valid (see .env.example):", file=sys.stderr)
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]).upper()
            print(f"  {where or 'settings'}: {problem['msg']}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_json)
    try:
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


async def _change_role(settings: Settings, action: str, person: str, role: Role) -> int:
    channel, _, external_id = person.partition(":")
    if not channel or not external_id:
        print("PERSON must look like telegram:123456789", file=sys.stderr)
        return 2
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
    print(f"Role {role.value} {verb} {person}." if changed else "Nothing to change.")
    return 0
