"""People and their roles."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Person, Role, RoleGrant


async def find_person(session: AsyncSession, channel: str, external_id: str) -> Person | None:
    query = select(Person).where(Person.channel == channel, Person.external_id == external_id)
    return (await session.exec(query)).first()


async def get_or_create_person(
    session: AsyncSession, channel: str, external_id: str, *, locale: str, display_name: str = ""
) -> Person:
    """The person behind (channel, external_id), created on first contact (name kept current).

    A concurrent first contact makes the insert fail on the unique key; the caller's
    transaction is then retried and finds the row.
    """
    person = await find_person(session, channel, external_id)
    if person is None:
        person = Person(
            channel=channel, external_id=external_id, locale=locale, display_name=display_name
        )
        session.add(person)
        await session.flush()
    elif display_name and person.display_name != display_name:
        person.display_name = display_name
        session.add(person)
    return person


async def roles_of(session: AsyncSession, person_id: int) -> frozenset[Role]:
    query = select(RoleGrant.role).where(RoleGrant.person_id == person_id)
    return frozenset(Role(role) for role in (await session.exec(query)).all())


async def grant_role(
    session: AsyncSession, channel: str, external_id: str, role: Role, *, granted_by: str
) -> bool:
    """Grant `role`; returns False when the person already had it."""
    person = await get_or_create_person(session, channel, external_id, locale="vi")
    assert person.id is not None
    if role in await roles_of(session, person.id):
        return False
    try:
        async with session.begin_nested():
            session.add(RoleGrant(person_id=person.id, role=role, granted_by=granted_by))
    except IntegrityError:
        return False
    return True


async def revoke_grants_by(session: AsyncSession, granted_by: str) -> int:
    """Revoke every role granted by `granted_by` (e.g. the sandbox's personas)."""
    result = await session.exec(delete(RoleGrant).where(col(RoleGrant.granted_by) == granted_by))
    return int(result.rowcount)


async def revoke_role(session: AsyncSession, channel: str, external_id: str, role: Role) -> bool:
    """Revoke `role`; returns False when the person did not have it."""
    person = await find_person(session, channel, external_id)
    if person is None:
        return False
    statement = delete(RoleGrant).where(
        col(RoleGrant.person_id) == person.id, col(RoleGrant.role) == role
    )
    result = await session.exec(statement)
    return bool(result.rowcount)
