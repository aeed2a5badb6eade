"""Loading the configuration the commands work on: the app's, as start-up validated it.

Every command loads the app through Flask's ``ScriptInfo`` and takes the state
``MCPAuth.init_app`` derived for it: what is checked is what start-up checked,
with the same code.  When no app can be found (no ``--app``, no ``app.py``),
the state is built from the environment alone, and the commands say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from flask import Flask
from flask.cli import NoAppException, ScriptInfo

from ..config import resolve_settings
from ..errors import ConfigError
from ..state import AppState, state_of


@dataclass(frozen=True)
class Loaded:
    """The state of the app (or of the environment alone) and where it came from."""

    state: AppState
    source: str
    app_found: bool = True


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
    """Load the app as ``flask`` does and return the state MCPAuth derived for it.

    Raises ConfigError when start-up validation fails (the app factory runs
    ``init_app``), click.ClickException when the app does not use MCPAuth or
    cannot be imported or created for another reason.
    """
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
            # What init_app validates and derives, without installing anything.
            environment = AppState(probe, resolve_settings({}, probe.config))
        except ConfigError as invalid:
            raise ConfigError(f"{invalid} (checked the environment only: {note})") from None
        return Loaded(environment, f"the environment only ({note})", app_found=False)
    except Exception as exc:
        config_error = _config_error_in(exc)
        if config_error is not None:
            raise config_error from None
        raise click.ClickException(
            f"the app could not be created: {type(exc).__name__}: {exc}"
        ) from None
    state = state_of(app)
    if state is None:
        raise click.ClickException(
            f"the app {app.name!r} does not initialise flask_mcp_auth.MCPAuth"
        )
    return Loaded(state, f"app {app.name!r}")


def load_or_fail(ctx: click.Context) -> Loaded:
    try:
        loaded = load_configuration(ctx)
    except ConfigError as exc:
        raise click.ClickException(f"the configuration is invalid: {exc}") from None
    if not loaded.app_found:
        click.echo(f"Note: using {loaded.source}.", err=True)
    return loaded


__all__ = ["Loaded", "load_configuration", "load_or_fail"]
