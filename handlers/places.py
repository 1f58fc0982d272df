"""Finding a commune or ward by a fragment of its name, for every flow that asks for one."""

from __future__ import annotations

from handlers.context import FlowContext
from handlers.labels import AREA_TAG_LABELS
from handlers.messages import Button
from handlers.text import clip, fmt
from models.communes import Commune


def commune_label(ctx: FlowContext, commune: Commune) -> str:
    if not commune.area_tags:
        return commune.name
    tags = ", ".join(ctx._(AREA_TAG_LABELS[t]) for t in commune.area_tags)
    return f"{commune.name} ({tags})"


def offer_communes(
    ctx: FlowContext, text: str, payload_prefix: str, extra: list[list[Button]] | None = None
) -> None:
    """Offer the communes matching `text` as buttons whose payload is prefix + code."""
    _ = ctx._
    directory = ctx.services.communes
    matches = directory.search(text)
    if not matches:
        ctx.say(
            fmt(
                _(
                    "I found no commune or ward matching “{query}” in {province}. "
                    "Try another part of the name."
                ),
                query=clip(text, 60),
                province=directory.province_name,
            ),
            extra,
        )
        return
    buttons = [[Button(commune_label(ctx, c), f"{payload_prefix}{c.code}")] for c in matches]
    ctx.say(_("Choose the commune or ward, or type another name:"), buttons + (extra or []))
