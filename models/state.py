"""Everything an update needs to know about its sender, read in one query.

Each update used to cost four lookups (person, conversation, roles, pending prompt),
each a round trip to the database thread; one joined query keeps handling cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Conversation, PendingInput, Person, Role, RoleGrant

_SENDER_QUERY = (
    select(
        Person,
        Conversation,
        PendingInput,
        select(func.aggregate_strings(col(RoleGrant.role), ","))
        .where(col(RoleGrant.person_id) == col(Person.id))
        .scalar_subquery(),
    )
    .outerjoin(Conversation, col(Conversation.person_id) == col(Person.id))
    .outerjoin(
        PendingInput,
        and_(
            col(PendingInput.person_id) == col(Person.id),
            col(PendingInput.chat_id) == bindparam("chat_id"),
        ),
    )
    .where(
        col(Person.channel) == bindparam("channel"),
        col(Person.external_id) == bindparam("external_id"),
    )
)
"""Built once: constructing a statement per update costs more than running it."""


@dataclass(slots=True)
class SenderState:
    person: Person
    conversation: Conversation
    """A detached copy: the flows change it freely; it is saved with compare-and-set."""
    roles: frozenset[Role]
    pending: PendingInput | None


async def load_sender(
    session: AsyncSession,
    channel: str,
    external_id: str,
    chat_id: str,
    *,
    locale: str,
    display_name: str,
) -> SenderState:
    """The sender's person (created on first contact), conversation, roles and pending prompt."""
    params = {"channel": channel, "external_id": external_id, "chat_id": chat_id}
    row = (await session.exec(_SENDER_QUERY, params=params)).first()
    if row is None:
        person = Person(
            channel=channel, external_id=external_id, locale=locale, display_name=display_name
        )
        session.add(person)
        await session.flush()
        assert person.id is not None
        return SenderState(person, Conversation(person_id=person.id, version=-1), frozenset(), None)
    person, conversation, pending, role_names = row
    if display_name and person.display_name != display_name:
        person.display_name = display_name
        session.add(person)
    assert person.id is not None
    return SenderState(
        person=person,
        conversation=_detached(conversation, person.id),
        roles=frozenset(Role(r) for r in role_names.split(",")) if role_names else frozenset(),
        pending=pending,
    )


def _detached(found: Conversation | None, person_id: int) -> Conversation:
    if found is None:
        return Conversation(person_id=person_id, version=-1)
    return Conversation(
        person_id=found.person_id,
        flow=found.flow,
        step=found.step,
        data=dict(found.data),
        version=found.version,
        updated_at=found.updated_at,
    )
