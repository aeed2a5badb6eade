"""The ``/mcp/status`` route, served from a blueprint the extension registers."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from ._time import utc_iso
from ._version import __version__
from .discovery import authentication_info
from .principal import current_principal


def status() -> ResponseReturnValue:
    """Who the caller is; never a secret. Reachable without a key."""
    ext = current_app.extensions["mcp_auth"]
    body: dict[str, object] = {
        "status": "ok",
        "version": __version__,
        "authenticated": current_principal.is_authenticated,
        "server_time": utc_iso(datetime.now(UTC).replace(microsecond=0)),
        "authentication": authentication_info(ext),
    }
    if current_principal.is_authenticated:
        body["principal"] = current_principal.to_dict()
        body["credential_source"] = current_principal.credential_source
    else:
        body["role"] = current_principal.role
    body["rate_limits"] = ext.rate_limits.window_stats(current_principal)
    return jsonify(body)


def make_status_blueprint(url: str) -> Blueprint:
    blueprint = Blueprint("mcp_auth", __name__)
    blueprint.add_url_rule(url, "status", status, methods=["GET"])
    return blueprint
