"""``flask mcp-auth list``: the keys by name and fingerprint; never a key id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from ..checks import expiry_state
from ..keys.model import APIKey
from .loading import load_or_fail


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@click.pass_context
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """List the API keys: name, fingerprint, role, permissions, limits, expiry. No secrets."""
    state = load_or_fail(ctx).state
    now = datetime.now(UTC)
    keys = list(state.store)
    if as_json:
        click.echo(json.dumps([_key_summary(key, now) for key in keys], indent=2))
        return
    if not keys:
        click.echo("No API keys are configured (MCP_API_KEYS is unset or empty).")
        return
    header = ("NAME", "FINGERPRINT", "ROLE", "PERMISSIONS", "LIMITS", "EXPIRY")
    rows = [
        (
            key.name or "(unnamed)",
            key.fingerprint,
            key.role,
            ",".join(sorted(key.permissions)) or "-",
            _limits(key),
            expiry_state(key, now),
        )
        for key in keys
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _limits(key: APIKey) -> str:
    limits = []
    if key.requests_per_minute is not None:
        limits.append(f"{key.requests_per_minute}/min")
    if key.requests_per_hour is not None:
        limits.append(f"{key.requests_per_hour}/h")
    return ", ".join(limits) or "none"


def _key_summary(key: APIKey, now: datetime) -> dict[str, Any]:
    return {**key.public_view(), "expiry": expiry_state(key, now)}


__all__ = ["list_keys"]
