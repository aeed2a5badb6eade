"""The ``/mcp/status`` route, served from a blueprint the extension registers per app."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from . import _time
from ._time import utc_iso
from ._version import __version__
from .context import principal
from .state import EXTENSION_KEY, AppState


def make_status_blueprint(state: AppState) -> Blueprint:
    """The status blueprint of one app, answering from that app's state."""

    def status() -> ResponseReturnValue:
        """Who the caller is; never a secret. Reachable without a key."""
        caller = principal()
        body: dict[str, object] = {
            "status": "ok",
            "version": __version__,
            "authenticated": caller.is_authenticated,
            "server_time": utc_iso(_time.now().replace(microsecond=0)),
            "authentication": state.authentication_info,
        }
        if caller.is_authenticated:
            body["principal"] = caller.to_dict()
            body["credential_source"] = caller.credential_source
        else:
            body["role"] = caller.role
        body["rate_limits"] = state.rate_limits.window_stats(caller)
        return jsonify(body)

    blueprint = Blueprint(EXTENSION_KEY, __name__)
    blueprint.add_url_rule(state.status_url, "status", status, methods=["GET"])
    return blueprint


__all__ = ["make_status_blueprint"]
