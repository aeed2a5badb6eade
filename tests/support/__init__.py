"""Helpers shared by the test suite; fixtures themselves live in the conftest files.

- ``paths``: the repository root and the files tests read (README, docs, tests/apps).
- ``seed``: the user guide's example key documents (one definition, text and dict).
- ``flask_app``: ``build_app``, the one app builder of the in-process tests.
- ``clocks``: a frozen wall clock for the key store and a manual monotonic clock.
- ``servers``: ``free_port``, ``stop_process``, ``RedisServer`` and ``GunicornServer``.
- ``audit``: a recording log handler, the audit tests' keys and views.
- ``cli``: running ``flask mcp-auth ...`` in-process.
- ``keyfiles``: rewriting an ``MCP_API_KEYS_FILE`` atomically or in place.
- ``example``: the example MCP service's test keys and the official ``mcp`` client.
- ``hypothesis_profiles``: the ``ci`` and ``long`` profiles (``HYPOTHESIS_PROFILE``).
- ``reference_schema``: the key-document validation before it was made fast for large
  stores, which tests compare the package's keys and messages against.
"""
