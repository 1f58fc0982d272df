"""Translatable names of the enums users see."""

from __future__ import annotations

from handlers.text import N_
from models.communes import AreaTag
from models.moderation import Action
from models.tables import (
    BroadcastKind,
    BroadcastStatus,
    NomineeGroup,
    NomineeKind,
    ReportStatus,
)

KIND_LABELS: dict[NomineeKind, str] = {
    NomineeKind.INDIVIDUAL: N_("An individual"),
    NomineeKind.COLLECTIVE: N_("A collective"),
}

GROUP_LABELS: dict[NomineeGroup, str] = {
    NomineeGroup.WORKER: N_("Worker"),
    NomineeGroup.FARMER: N_("Farmer"),
    NomineeGroup.DIRECT_LABOURER: N_("Direct labourer"),
    NomineeGroup.ARMED_FORCES: N_("Armed forces"),
    NomineeGroup.MILITIA: N_("Militia and self-defence"),
    NomineeGroup.COMMUNE_POLICE: N_("Commune police"),
    NomineeGroup.NEIGHBOURHOOD_GUARD: N_("Neighbourhood guard"),
    NomineeGroup.WORKPLACE_GUARD: N_("Agency or company guard"),
    NomineeGroup.VILLAGE_OFFICER: N_("Village or neighbourhood officer"),
    NomineeGroup.SMALL_COLLECTIVE: N_("Small collective"),
    NomineeGroup.STUDENT: N_("Pupil or student"),
    NomineeGroup.CIVIL_SERVANT: N_("Civil servant"),
    NomineeGroup.ENTREPRENEUR: N_("Entrepreneur"),
    NomineeGroup.OTHER: N_("Other"),
}

AREA_TAG_LABELS: dict[AreaTag, str] = {
    AreaTag.HIGHLAND: N_("highland"),
    AreaTag.BORDER: N_("border"),
    AreaTag.ESPECIALLY_DIFFICULT: N_("especially difficult"),
    AreaTag.ETHNIC_MINORITY: N_("ethnic minority area"),
}

STATUS_LABELS: dict[ReportStatus, str] = {
    ReportStatus.SUBMITTED: N_("waiting for review"),
    ReportStatus.CLAIMED: N_("being reviewed"),
    ReportStatus.NEEDS_INFO: N_("more information requested"),
    ReportStatus.APPROVED: N_("approved"),
    ReportStatus.REJECTED: N_("not approved"),
    ReportStatus.DUPLICATE: N_("duplicate of another report"),
    ReportStatus.PUBLISHED: N_("published"),
    ReportStatus.WITHDRAWN: N_("withdrawn"),
}

BROADCAST_KIND_LABELS: dict[BroadcastKind, str] = {
    BroadcastKind.STORY: N_("story"),
    BroadcastKind.DIGEST: N_("weekly digest"),
    BroadcastKind.ANNOUNCEMENT: N_("announcement"),
    BroadcastKind.MOVEMENT: N_("movement"),
}

BROADCAST_STATUS_LABELS: dict[BroadcastStatus, str] = {
    BroadcastStatus.SCHEDULED: N_("scheduled"),
    BroadcastStatus.RUNNING: N_("being sent"),
    BroadcastStatus.DONE: N_("sent"),
    BroadcastStatus.CANCELLED: N_("cancelled"),
}

MOVEMENT_EVENT_LABELS: dict[str, str] = {
    "launch": N_("movement launch"),
    "reminder": N_("movement reminder"),
    "interim": N_("movement interim review"),
    "final": N_("movement final review"),
}
"""A movement's announcements, by the event named in their broadcast key."""

ACTION_LABELS: dict[str, str] = {
    Action.CLAIM: N_("taken for review"),
    Action.APPROVE: N_("approval"),
    Action.REJECT: N_("rejection"),
    Action.ASK: N_("question to the reporter"),
    Action.DUPLICATE: N_("marked as a duplicate"),
    Action.EDIT: N_("edit for publication"),
    Action.ANSWER: N_("answer"),
    Action.PUBLISH: N_("publication"),
    Action.WITHDRAW: N_("withdrawal"),
}
"""What each audited action of a report is called in /history (`models.moderation.audit`)."""
