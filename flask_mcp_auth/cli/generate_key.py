"""``flask mcp-auth generate-key``: a signed key and the entry to store for it."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import click

from .._time import utc_iso
from ..checks import weak_key_id_reason
from ..errors import ConfigError
from ..keys.schema import parse_keys
from ..keys.signing import generate_api_key
from ..roles import ROLES
from ..state import AppState
from .loading import load_or_fail

if TYPE_CHECKING:
    _ParamType = click.ParamType[datetime]  # generic in click >= 8.2 only
else:
    _ParamType = click.ParamType

_DURATION = re.compile(r"(\d+)([wdh])")
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours"}


class ExpiryType(_ParamType):
    """An ISO date (end of that day, UTC), an ISO date-time, or a duration like 90d, 12h, 2w."""

    name = "DATE|DATETIME|DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = parse_expiry(str(value), datetime.now(UTC))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return moment


def parse_expiry(text: str, now: datetime) -> datetime:
    """The expiry instant (UTC, whole seconds) that ``text`` asks for; it must be after ``now``."""
    text = text.strip()
    duration = _DURATION.fullmatch(text)
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        if amount == 0:
            raise ValueError(f"{text!r} is not a positive duration")
        moment = now + timedelta(**{_DURATION_UNITS[unit]: amount})
    else:
        try:
            moment = datetime.combine(date.fromisoformat(text), time(23, 59, 59), UTC)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{text!r} is neither an ISO date (2026-12-31), an ISO date-time "
                    "(2026-12-31T23:59:59Z) nor a duration (90d, 12h, 2w)"
                ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # a date-time without zone is read as UTC
    moment = moment.astimezone(UTC).replace(microsecond=0)
    if moment <= now:
        raise ValueError(f"{text!r} is already past")
    return moment


def _split_permissions(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
    if value is None:
        return []
    permissions = [p.strip() for p in value.split(",")]
    if any(not p for p in permissions):
        raise click.BadParameter("expected comma-separated names such as read,write")
    return list(dict.fromkeys(permissions))


@click.command("generate-key")
@click.argument("key_id")
@click.option("--name", help="Human-readable name of the key (shown in logs and lists).")
@click.option("--user-id", help="userId of the key's holder.")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="guest",
    show_default=True,
    help="Role of the key.",
)
@click.option(
    "--permissions",
    callback=_split_permissions,
    help="Comma-separated permissions, e.g. read,write (default: none).",
)
@click.option("--rpm", type=click.IntRange(min=1), help="rateLimit.requestsPerMinute")
@click.option("--rph", type=click.IntRange(min=1), help="rateLimit.requestsPerHour")
@click.option(
    "--expires",
    type=ExpiryType(),
    help="Expiry: ISO date (end of day, UTC), ISO date-time, or a duration such as 90d, 12h, 2w.",
)
@click.option(
    "--merge",
    is_flag=True,
    help="Print the whole updated MCP_API_KEYS document (the key then goes to stderr).",
)
@click.pass_context
def generate_key(
    ctx: click.Context,
    key_id: str,
    name: str | None,
    user_id: str | None,
    role: str,
    permissions: list[str],
    rpm: int | None,
    rph: int | None,
    expires: datetime | None,
    merge: bool,
) -> None:
    """Make a signed key mcp_<KEY_ID>_<signature> and its MCP_API_KEYS entry.

    The key is printed once; only the entry (which holds no signature) needs
    storing on the server.
    """
    state = load_or_fail(ctx).state
    if not state.secret:
        raise click.ClickException(
            "there is no secret to sign keys with: set JWT_SECRET (or the app's SECRET_KEY)"
        )
    existing = state.store.find(key_id)
    if existing is not None:
        raise click.ClickException(
            f"the key id is already in use by {existing.label}; choose another id"
        )

    entry: dict[str, Any] = {}
    if name is not None:
        entry["name"] = name
    if user_id is not None:
        entry["userId"] = user_id
    entry["role"] = role
    entry["permissions"] = permissions
    if rpm is not None or rph is not None:
        entry["rateLimit"] = {
            field: limit
            for field, limit in (("requestsPerMinute", rpm), ("requestsPerHour", rph))
            if limit is not None
        }
    if expires is not None:
        entry["expiresAt"] = utc_iso(expires)
    try:
        # The same validation as start-up, so the entry printed is one init_app accepts.
        parse_keys({key_id: entry}, state.secret, source="generate-key")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    signed_key = generate_api_key(key_id, state.secret)
    if not state.settings["MCP_REQUIRE_SIGNED_KEYS"]:
        weakness = weak_key_id_reason(key_id)
        click.echo(
            "Note: MCP_REQUIRE_SIGNED_KEYS is off, so the key id alone is accepted as a key "
            "too"
            + (f", and this id {weakness}" if weakness else "")
            + ". Keep MCP_API_KEYS secret, or set MCP_REQUIRE_SIGNED_KEYS=true.",
            err=True,
        )
    # With a key file, new keys go there: it is the source that reloads without a restart.
    target = "MCP_API_KEYS_FILE" if state.settings["MCP_API_KEYS_FILE"] else "MCP_API_KEYS"
    if merge:
        document = _current_document(state, target)
        document[key_id] = entry
        click.echo(f"API key (shown once, store it now):\n  {signed_key}", err=True)
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"API key (shown once, store it now):\n  {signed_key}\n")
    click.echo(f"Add this entry to {target}:")
    click.echo(json.dumps({key_id: entry}, indent=2))


def _current_document(state: AppState, source: str) -> dict[str, Any]:
    """The document of ``source`` (MCP_API_KEYS, or the file MCP_API_KEYS_FILE names)
    as start-up read it, as a mutable dict in its original order."""
    raw = state.settings[source]
    if source == "MCP_API_KEYS_FILE":
        with open(raw, encoding="utf-8") as handle:
            raw = handle.read()
    if raw is None or (isinstance(raw, (str, bytes)) and not raw.strip()):
        return {}
    if isinstance(raw, (str, bytes)):
        document: dict[str, Any] = json.loads(raw)  # already validated by start-up
    else:
        document = json.loads(json.dumps(raw))  # a deep copy of a mapping from app.config
    return document


__all__ = ["ExpiryType", "generate_key", "parse_expiry"]
