"""``flask mcp-auth``: generate keys, check a configuration, list keys.

The group is registered twice, on purpose:

* through the ``flask.commands`` entry point (setup.cfg), so that
  ``flask --app X mcp-auth check`` exists even when the app cannot be created,
  which is exactly when a broken configuration needs checking: Flask looks up
  plugin commands before it loads the app;
* with ``app.cli.add_command`` in ``MCPAuth.init_app``, so that the commands
  are there without an installed distribution and through
  ``app.test_cli_runner().invoke(args=["mcp-auth", ...])``.

Every command loads the app through Flask's ``ScriptInfo`` and takes the
configuration from the ``MCPAuth`` instance it finds there: what was validated
is what start-up validated, with the same code.  When no app can be found
(no ``--app``, no ``app.py``), the commands fall back to the environment alone
and say so.  No command ever prints a plain key id except ``generate-key``,
which prints the key it has just made and the entry to store.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import click
from flask import Flask
from flask.cli import NoAppException, ScriptInfo

from ._time import utc_iso
from .checks import Finding, expiry_state, review, weak_key_id_reason
from .credentials import generate_api_key
from .errors import ConfigError
from .keystore import APIKey, parse_keys
from .principal import ROLES

if TYPE_CHECKING:
    from .extension import MCPAuth

EXIT_OK = 0
EXIT_WARNINGS = 1
EXIT_ERRORS = 2

_DURATION = re.compile(r"(\d+)([wdh])")
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours"}


# -- loading the configuration ---------------------------------------------


class Loaded:
    """The MCPAuth of the app (or of the environment alone) and where it came from."""

    def __init__(self, ext: MCPAuth, source: str, app_found: bool = True) -> None:
        self.ext = ext
        self.source = source
        self.app_found = app_found


def _config_error_in(exc: BaseException) -> ConfigError | None:
    """The ConfigError that caused ``exc`` (an app factory may wrap it), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConfigError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def load_configuration(ctx: click.Context) -> Loaded:
    """Load the app as ``flask`` does and return its MCPAuth.

    Raises ConfigError when start-up validation fails (the app factory runs
    ``init_app``), click.ClickException when the app does not use MCPAuth or
    cannot be imported or created for another reason.
    """
    from .extension import EXTENSION_KEY, MCPAuth

    info = ctx.ensure_object(ScriptInfo)
    try:
        app = info.load_app()
    except NoAppException as exc:
        if info.app_import_path or info.create_app:
            # The app named with --app / FLASK_APP cannot be imported: say so.
            raise click.ClickException(exc.format_message()) from None
        # No app found at all: validate the environment exactly as start-up would.
        note = exc.format_message().splitlines()[0]
        probe = Flask("flask_mcp_auth.cli")
        try:
            MCPAuth(probe)
        except ConfigError as invalid:
            raise ConfigError(f"{invalid} (checked the environment only: {note})") from None
        return Loaded(
            probe.extensions[EXTENSION_KEY], f"the environment only ({note})", app_found=False
        )
    except Exception as exc:
        config_error = _config_error_in(exc)
        if config_error is not None:
            raise config_error from None
        raise click.ClickException(
            f"the app could not be created: {type(exc).__name__}: {exc}"
        ) from None
    ext = app.extensions.get(EXTENSION_KEY)
    if ext is None:
        raise click.ClickException(
            f"the app {app.name!r} does not initialise flask_mcp_auth.MCPAuth"
        )
    return Loaded(ext, f"app {app.name!r}")


def _load_or_fail(ctx: click.Context) -> Loaded:
    try:
        loaded = load_configuration(ctx)
    except ConfigError as exc:
        raise click.ClickException(f"the configuration is invalid: {exc}") from None
    if not loaded.app_found:
        click.echo(f"Note: using {loaded.source}.", err=True)
    return loaded


# -- option types ------------------------------------------------------------


class ExpiryType(click.ParamType):
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


# -- the commands --------------------------------------------------------------


@click.group("mcp-auth")
def mcp_auth_cli() -> None:
    """flask-mcp-auth: generate API keys, check the configuration, list keys."""


@mcp_auth_cli.command("generate-key")
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
    ext = _load_or_fail(ctx).ext
    if not ext.secret:
        raise click.ClickException(
            "there is no secret to sign keys with: set JWT_SECRET (or the app's SECRET_KEY)"
        )
    existing = ext.store.find(key_id)
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
        parse_keys({key_id: entry}, ext.secret, source="generate-key")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    signed_key = generate_api_key(key_id, ext.secret)
    if not ext.settings["MCP_REQUIRE_SIGNED_KEYS"]:
        weakness = weak_key_id_reason(key_id)
        click.echo(
            "Note: MCP_REQUIRE_SIGNED_KEYS is off, so the key id alone is accepted as a key "
            "too"
            + (f", and this id {weakness}" if weakness else "")
            + ". Keep MCP_API_KEYS secret, or set MCP_REQUIRE_SIGNED_KEYS=true.",
            err=True,
        )
    # With a key file, new keys go there: it is the source that reloads without a restart.
    target = "MCP_API_KEYS_FILE" if ext.settings["MCP_API_KEYS_FILE"] else "MCP_API_KEYS"
    if merge:
        document = _current_document(ext, target)
        document[key_id] = entry
        click.echo(f"API key (shown once, store it now):\n  {signed_key}", err=True)
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"API key (shown once, store it now):\n  {signed_key}\n")
    click.echo(f"Add this entry to {target}:")
    click.echo(json.dumps({key_id: entry}, indent=2))


def _current_document(ext: MCPAuth, source: str) -> dict[str, Any]:
    """The document of ``source`` (MCP_API_KEYS, or the file MCP_API_KEYS_FILE names)
    as start-up read it, as a mutable dict in its original order."""
    raw = ext.settings[source]
    if source == "MCP_API_KEYS_FILE":
        with open(raw, encoding="utf-8") as handle:
            raw = handle.read()
    if raw is None or (isinstance(raw, (str, bytes)) and not raw.strip()):
        return {}
    if isinstance(raw, (str, bytes)):
        document: dict[str, Any] = json.loads(raw)  # already validated by start-up
        return document
    return json.loads(json.dumps(raw))  # a deep copy of a mapping from app.config


@mcp_auth_cli.command("check")
@click.option("--strict", is_flag=True, help="Exit with status 1 when there are warnings.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def check(ctx: click.Context, strict: bool, as_json: bool) -> None:
    """Validate the configuration as start-up does, then review it.

    Exit status: 0 valid (warnings allowed), 1 warnings with --strict,
    2 invalid configuration.
    """
    errors: list[str] = []
    findings: list[Finding] = []
    source: str | None = None
    key_count: int | None = None
    try:
        loaded = load_configuration(ctx)
    except ConfigError as exc:
        errors.append(str(exc))
    except click.ClickException as exc:
        errors.append(exc.format_message())
    else:
        source = loaded.source
        key_count = len(loaded.ext.store)
        findings = review(loaded.ext, datetime.now(UTC))

    if errors:
        exit_code = EXIT_ERRORS
    elif findings and strict:
        exit_code = EXIT_WARNINGS
    else:
        exit_code = EXIT_OK

    if as_json:
        report = {
            "valid": not errors,
            "source": source,
            "keys": key_count,
            "errors": errors,
            "warnings": [finding.to_dict() for finding in findings],
            "exit_code": exit_code,
        }
        click.echo(json.dumps(report, indent=2))
    else:
        _print_check(source, key_count, errors, findings)
    ctx.exit(exit_code)


def _print_check(
    source: str | None, key_count: int | None, errors: list[str], findings: list[Finding]
) -> None:
    click.echo(
        f"Checked the flask-mcp-auth configuration of {source}."
        if source
        else "Checked the flask-mcp-auth configuration."
    )
    for error in errors:
        click.secho(f"error: {error}", fg="red")
    if not errors:
        click.echo(f"The configuration is valid ({key_count} API key(s)).")
    for finding in findings:
        click.secho(f"warning [{finding.code}]: {finding.message}", fg="yellow")
    click.echo(f"{len(errors)} error(s), {len(findings)} warning(s).")


@mcp_auth_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@click.pass_context
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """List the API keys: name, fingerprint, role, permissions, limits, expiry. No secrets."""
    ext = _load_or_fail(ctx).ext
    now = datetime.now(UTC)
    keys = list(ext.store)
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
    return {
        "name": key.name,
        "fingerprint": key.fingerprint,
        "user_id": key.user_id,
        "role": key.role,
        "permissions": sorted(key.permissions),
        "rate_limit": {
            "requests_per_minute": key.requests_per_minute,
            "requests_per_hour": key.requests_per_hour,
        },
        "expires_at": utc_iso(key.expires_at) if key.expires_at else None,
        "expiry": expiry_state(key, now),
    }
