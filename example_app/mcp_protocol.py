"""A small MCP server for Flask: Streamable HTTP, stateless, JSON responses only.

One ``POST`` carries one JSON-RPC 2.0 message.  Requests get their response as
``application/json``; notifications and client responses get ``202`` with no
body.  No session id is issued, so clients never open the optional ``GET``
event stream.  ``GET`` and ``DELETE`` pass the endpoint's guard first, as
``POST`` does (401 without a valid key), and are then answered ``405`` with
``Allow: POST, OPTIONS``: what the transport prescribes for a server that
offers no SSE stream.

Two eras of the protocol are served on the same endpoint:

* **Legacy** (2024-11-05 .. 2025-11-25): ``initialize`` (with protocol-version
  negotiation), ``ping``, ``tools/list`` and ``tools/call``; everything else is
  ``-32601``.
* **Modern** (2026-07-28): no handshake.  A request is modern when its
  ``MCP-Protocol-Version`` header or its
  ``_meta["io.modelcontextprotocol/protocolVersion"]`` names a modern
  revision; it must then carry both, equal, plus
  ``io.modelcontextprotocol/clientCapabilities`` (else 400, ``-32602``), an
  ``Mcp-Method`` header equal to ``method`` and, for ``tools/call``, an
  ``Mcp-Name`` header equal to ``params.name`` (else 400, ``-32020``
  HeaderMismatch).  Methods: ``server/discover``, ``tools/list`` and
  ``tools/call``; anything else (``ping`` and ``initialize`` included) is
  404, ``-32601``.  Every result carries ``resultType: "complete"`` and the
  server's name in ``_meta["io.modelcontextprotocol/serverInfo"]``; the
  cacheable ones (``server/discover``, ``tools/list``) carry ``ttlMs`` and
  ``cacheScope``.

A revision the server does not speak, in the header or in ``_meta``, is 400
with ``-32022`` (UnsupportedProtocolVersion) listing the supported ones.

Authorization is not done here: each tool names the permissions and the role
it needs, :meth:`MCPServer.tool` wraps it in flask-mcp-auth's
``require_permission`` / ``require_role`` decorators, and ``tools/list`` shows
a caller only the tools its key may call.  A refused call raises the
extension's HTTP error (403, or 401 for anonymous callers), which the extension
renders as a JSON-RPC error body that MCP clients surface with its message.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from flask_mcp_auth import Principal, current_principal, require_permission, require_role

log = logging.getLogger(__name__)

#: Revisions without a handshake: every request names its version (and the client's
#: capabilities) in ``_meta`` and in the ``MCP-Protocol-Version`` header.
MODERN_PROTOCOL_VERSIONS: tuple[str, ...] = ("2026-07-28",)
#: Revisions that start with ``initialize``, newest first.
HANDSHAKE_PROTOCOL_VERSIONS: tuple[str, ...] = (
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
)
#: Protocol revisions this server speaks, newest first.
PROTOCOL_VERSIONS: tuple[str, ...] = MODERN_PROTOCOL_VERSIONS + HANDSHAKE_PROTOCOL_VERSIONS
LATEST_PROTOCOL_VERSION = PROTOCOL_VERSIONS[0]
#: What ``initialize`` answers a client asking for a revision it cannot negotiate.
LATEST_HANDSHAKE_VERSION = HANDSHAKE_PROTOCOL_VERSIONS[0]
PROTOCOL_VERSION_HEADER = "MCP-Protocol-Version"
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"
# The per-request and per-result ``_meta`` keys of the modern revisions.
META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
#: Modern methods whose ``Mcp-Name`` header mirrors a body field.
NAME_FIELDS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
#: The ``Allow`` header of the endpoint: what it answers other than with 405.
ALLOWED_METHODS = "POST, OPTIONS"

# JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# MCP's own codes (2026-07-28).
HEADER_MISMATCH = -32020
UNSUPPORTED_PROTOCOL_VERSION = -32022

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}

ToolResult = str | Mapping[str, Any]


class JSONRPCError(Exception):
    """A JSON-RPC error answer; ``http_status`` is 400 for messages that are not valid requests."""

    def __init__(
        self, code: int, message: str, data: Any = None, *, http_status: int = 200
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.http_status = http_status


class ToolError(Exception):
    """Raised by a tool for a failure the caller should see (``isError: true`` result)."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: Mapping[str, Any]
    #: Runs the tool: checks the caller's permissions and role, then the arguments.
    invoke: Callable[[Mapping[str, Any]], ToolResult] = field(repr=False)
    permissions: tuple[str, ...] = ()
    role: str | None = None

    def allowed_for(self, principal: Principal) -> bool:
        if self.role is not None and not principal.has_role(self.role):
            return False
        return principal.has_permission(*self.permissions)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": dict(self.input_schema),
        }


class MCPServer:
    """A registry of tools plus the JSON-RPC dispatcher that serves them."""

    def __init__(self, name: str, version: str, *, instructions: str | None = None) -> None:
        self.name = name
        self.version = version
        self.instructions = instructions
        self.tools: dict[str, Tool] = {}

    # -- tools ------------------------------------------------------------------

    def tool(
        self,
        description: str,
        input_schema: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        permissions: Sequence[str] = (),
        role: str | None = None,
    ) -> Callable[[Callable[..., ToolResult]], Callable[..., ToolResult]]:
        """Register a function as a tool; its arguments arrive as keyword arguments.

        The caller needs every permission in ``permissions`` and, if given, at
        least ``role``.  A tool returns a string (sent as text) or a JSON
        object (sent as text and as ``structuredContent``).
        """
        schema = dict(input_schema or {"type": "object", "properties": {}})

        def register(function: Callable[..., ToolResult]) -> Callable[..., ToolResult]:
            tool_name = name or function.__name__

            def invoke(arguments: Mapping[str, Any]) -> ToolResult:
                problem = _argument_problem(schema, arguments)
                if problem:
                    raise ToolError(f"Invalid arguments for tool {tool_name!r}: {problem}")
                return function(**arguments)

            # The gate wraps the argument check too: a caller that may not use
            # the tool learns nothing about its schema.
            gated = invoke
            if permissions:
                gated = require_permission(*permissions)(gated)
            if role is not None:
                gated = require_role(role)(gated)
            if tool_name in self.tools:
                raise ValueError(f"tool {tool_name!r} is registered twice")
            self.tools[tool_name] = Tool(
                tool_name, description, schema, gated, tuple(permissions), role
            )
            return function

        return register

    # -- HTTP -------------------------------------------------------------------

    def register_endpoint(
        self, app: Flask, url: str = "/mcp", *, guard: Callable[[], None] | None = None
    ) -> None:
        """Serve the MCP endpoint at ``url``; ``guard`` runs first and may raise (e.g. a 401)."""

        def mcp_endpoint() -> Response:
            if guard is not None:
                guard()
            return self.handle_post()

        def mcp_no_stream() -> Response:
            # The key first, as for POST (401 without one), then the 405 the Streamable
            # HTTP transport prescribes for a server that offers no SSE stream on GET.
            if guard is not None:
                guard()
            body = {
                "error": "method_not_allowed",
                "message": (
                    "This MCP server offers no SSE stream and no sessions: it is stateless "
                    "and answers each JSON-RPC message sent with POST as JSON."
                ),
            }
            return _json_response(body, 405, headers={"Allow": ALLOWED_METHODS})

        def mcp_options() -> Response:
            return Response(status=204, headers={"Allow": ALLOWED_METHODS})

        # Explicit OPTIONS: Flask's automatic answer would list GET and DELETE as allowed.
        app.add_url_rule(
            url, "mcp", mcp_endpoint, methods=["POST"], provide_automatic_options=False
        )
        app.add_url_rule(
            url,
            "mcp_no_stream",
            mcp_no_stream,
            methods=["GET", "DELETE"],
            provide_automatic_options=False,
        )
        app.add_url_rule(url, "mcp_options", mcp_options, methods=["OPTIONS"])

    def handle_post(self) -> Response:
        """Answer the JSON-RPC message in the current request's body."""
        message_id: Any = None
        try:
            message = _parse_body(request.get_data())
            message_id = message.get("id")
            if "method" not in message:
                return Response(status=202)  # a client's response to us: nothing to say
            method = message["method"]
            params = message.get("params")
            version = _request_version(method, params)
            if "id" not in message:
                log.debug("notification %s", method)
                return Response(status=202)
            if version in MODERN_PROTOCOL_VERSIONS:
                _check_modern_request(method, params, version)
                result = self.dispatch_modern(method, params)
            else:
                result = self.dispatch(method, params)
        except JSONRPCError as error:
            return _json_response(_error_body(message_id, error), error.http_status)
        return _json_response({"jsonrpc": "2.0", "id": message_id, "result": result})

    # -- JSON-RPC methods -------------------------------------------------------

    def dispatch(self, method: str, params: Any) -> dict[str, Any]:
        if params is not None and not isinstance(params, dict):
            raise JSONRPCError(INVALID_PARAMS, "params must be an object")
        params = params or {}
        if method == "initialize":
            return self.initialize(params)
        if method == "ping":
            return {}
        if method == "tools/list":
            return self.list_tools()
        if method == "tools/call":
            return self.call_tool(params)
        raise JSONRPCError(METHOD_NOT_FOUND, f"Method not found: {method}")

    def dispatch_modern(self, method: str, params: Any) -> dict[str, Any]:
        """A 2026-07-28 request (its metadata already checked): no handshake, no ``ping``."""
        params = params or {}
        result: dict[str, Any]
        if method == "server/discover":
            result = self.discover()
        elif method == "tools/list":
            # The list depends on the caller's key: no shared cache may reuse it.
            result = {**self.list_tools(), "ttlMs": 0, "cacheScope": "private"}
        elif method == "tools/call":
            result = self.call_tool(params)
        else:
            raise JSONRPCError(METHOD_NOT_FOUND, f"Method not found: {method}", http_status=404)
        result["resultType"] = "complete"
        result["_meta"] = {META_SERVER_INFO: self.server_info()}
        return result

    def server_info(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    def discover(self) -> dict[str, Any]:
        """``server/discover``: the same answer for every caller."""
        result: dict[str, Any] = {
            "supportedVersions": list(PROTOCOL_VERSIONS),
            "capabilities": {"tools": {"listChanged": False}},
            "ttlMs": 0,
            "cacheScope": "public",
        }
        if self.instructions:
            result["instructions"] = self.instructions
        return result

    def initialize(self, params: Mapping[str, Any]) -> dict[str, Any]:
        requested = params.get("protocolVersion")
        if requested in HANDSHAKE_PROTOCOL_VERSIONS:
            version = requested
        else:
            version = LATEST_HANDSHAKE_VERSION
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": self.server_info(),
        }
        if self.instructions:
            result["instructions"] = self.instructions
        return result

    def list_tools(self) -> dict[str, Any]:
        visible = [t.describe() for t in self.tools.values() if t.allowed_for(current_principal)]
        return {"tools": visible}

    def call_tool(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if not isinstance(name, str):
            raise JSONRPCError(INVALID_PARAMS, "tools/call needs a tool name in params.name")
        if not isinstance(arguments, dict):
            raise JSONRPCError(INVALID_PARAMS, "params.arguments must be an object")
        tool = self.tools.get(name)
        if tool is None:
            raise JSONRPCError(INVALID_PARAMS, f"Unknown tool: {name}")
        try:
            output = tool.invoke(arguments)
        except ToolError as error:
            return {"content": [{"type": "text", "text": str(error)}], "isError": True}
        except HTTPException:
            raise  # the extension's 401/403/429: rendered as JSON-RPC errors by the extension
        except Exception:
            log.exception("tool %s failed", name)
            raise JSONRPCError(
                INTERNAL_ERROR, f"Tool {name!r} failed; see the server log", http_status=500
            ) from None
        return _tool_result(output)


# -- helpers ----------------------------------------------------------------------


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        raise JSONRPCError(
            PARSE_ERROR, "Parse error: the body is not JSON", http_status=400
        ) from None
    if isinstance(message, list):
        raise JSONRPCError(
            INVALID_REQUEST,
            "JSON-RPC batches are not supported; send one message per POST",
            http_status=400,
        )
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise JSONRPCError(
            INVALID_REQUEST,
            'Invalid request: expected a JSON-RPC 2.0 object ("jsonrpc": "2.0")',
            http_status=400,
        )
    message_id = message.get("id")
    if "id" in message and (not isinstance(message_id, (str, int)) or isinstance(message_id, bool)):
        raise JSONRPCError(
            INVALID_REQUEST, "Invalid request: id must be a string or an integer", http_status=400
        )
    if "method" in message and not isinstance(message["method"], str):
        raise JSONRPCError(
            INVALID_REQUEST, "Invalid request: method must be a string", http_status=400
        )
    if "method" not in message and "id" not in message:
        raise JSONRPCError(INVALID_REQUEST, "Invalid request: no method", http_status=400)
    return message


def _request_version(method: str, params: Any) -> str | None:
    """The revision a request names (header or ``_meta``), None if it names none.

    A revision this server does not speak is refused here, for requests and
    notifications alike; ``initialize`` negotiates its version in the body instead.
    """
    if method == "initialize":
        return None
    header = request.headers.get(PROTOCOL_VERSION_HEADER)
    meta = params.get("_meta") if isinstance(params, dict) else None
    in_meta = meta.get(META_PROTOCOL_VERSION) if isinstance(meta, dict) else None
    for requested in (header, in_meta):
        if isinstance(requested, str) and requested not in PROTOCOL_VERSIONS:
            raise JSONRPCError(
                UNSUPPORTED_PROTOCOL_VERSION,
                f"Unsupported protocol version {requested!r}; "
                f"supported: {', '.join(PROTOCOL_VERSIONS)}",
                {"supported": list(PROTOCOL_VERSIONS), "requested": requested},
                http_status=400,
            )
    if header in MODERN_PROTOCOL_VERSIONS:
        return header
    if in_meta in MODERN_PROTOCOL_VERSIONS:
        return str(in_meta)
    return header


def _check_modern_request(method: str, params: Any, version: str) -> None:
    """The per-request metadata a 2026-07-28 request must carry, in its body and headers."""
    params = params if isinstance(params, dict) else {}
    meta = params.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    if META_PROTOCOL_VERSION not in meta or not isinstance(
        meta.get(META_CLIENT_CAPABILITIES), dict
    ):
        raise JSONRPCError(
            INVALID_PARAMS,
            f"A {version} request needs params._meta with {META_PROTOCOL_VERSION!r} "
            f"and {META_CLIENT_CAPABILITIES!r} (an object)",
            http_status=400,
        )
    mirrored = [(PROTOCOL_VERSION_HEADER, meta[META_PROTOCOL_VERSION], "the protocol version")]
    mirrored.append((METHOD_HEADER, method, "method"))
    name_field = NAME_FIELDS.get(method)
    if name_field is not None and isinstance(params.get(name_field), str):
        mirrored.append((NAME_HEADER, params[name_field], f"params.{name_field}"))
    for header_name, body_value, source in mirrored:
        raw = request.headers.get(header_name)
        if raw is None:
            problem = f"the {header_name} header is missing"
        else:
            value = _decode_header_value(raw) if header_name == NAME_HEADER else raw
            if value == body_value:
                continue
            problem = f"{header_name} header value {raw!r} does not match {source} {body_value!r}"
        raise JSONRPCError(HEADER_MISMATCH, f"Header mismatch: {problem}", http_status=400)


def _decode_header_value(raw: str) -> str | None:
    """A header value, Base64-decoded if it uses the ``=?base64?...?=`` sentinel; None if broken."""
    if not (raw.startswith("=?base64?") and raw.endswith("?=")):
        return raw
    try:
        return base64.b64decode(raw[len("=?base64?") : -len("?=")], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _argument_problem(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> str | None:
    """The first way ``arguments`` breaks the (flat) JSON schema, or None."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    for required in schema.get("required", ()):
        if required not in arguments:
            return f"missing required argument {required!r}"
    for argument, value in arguments.items():
        spec = properties.get(argument)
        if spec is None:
            if schema.get("additionalProperties", True) is False:
                return f"unexpected argument {argument!r}"
            continue
        expected = spec.get("type")
        python_types = _JSON_TYPES.get(expected) if isinstance(expected, str) else None
        if python_types is None:
            continue
        # bool is an int in Python but not a JSON integer/number.
        if not isinstance(value, python_types) or (
            isinstance(value, bool) and expected != "boolean"
        ):
            return f"argument {argument!r} must be of type {expected}"
        if expected in ("integer", "number"):
            if "minimum" in spec and value < spec["minimum"]:
                return f"argument {argument!r} must be at least {spec['minimum']}"
            if "maximum" in spec and value > spec["maximum"]:
                return f"argument {argument!r} must be at most {spec['maximum']}"
        if expected == "string":
            if "minLength" in spec and len(value) < spec["minLength"]:
                return f"argument {argument!r} must have at least {spec['minLength']} characters"
            if "maxLength" in spec and len(value) > spec["maxLength"]:
                return f"argument {argument!r} must have at most {spec['maxLength']} characters"
    return None


def _tool_result(output: ToolResult) -> dict[str, Any]:
    if isinstance(output, str):
        return {"content": [{"type": "text", "text": output}], "isError": False}
    structured = dict(output)
    return {
        "content": [{"type": "text", "text": json.dumps(structured, ensure_ascii=False)}],
        "structuredContent": structured,
        "isError": False,
    }


def _error_body(message_id: Any, error: JSONRPCError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    valid_id = isinstance(message_id, (str, int)) and not isinstance(message_id, bool)
    return {"jsonrpc": "2.0", "id": message_id if valid_id else None, "error": body}


def _json_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status,
        headers=dict(headers or {}),
        mimetype="application/json",
    )
