"""API keys, one module a job: :mod:`.model` (the key, its fingerprint, the constant-time
lookup), :mod:`.schema` (parsing ``MCP_API_KEYS``), :mod:`.store`, :mod:`.signing`
(``mcp_<keyId>_<signature>``), :mod:`.source` (the store in force, reloaded from
``MCP_API_KEYS_FILE``) and :mod:`.verified` (credentials already resolved).

Nothing is imported here, so that importing one module of the package never
imports the others.
"""
