"""``flask mcp-auth``: generate keys, check a configuration, list keys.

The group is registered twice, on purpose:

* through the ``flask.commands`` entry point (setup.cfg), so that
  ``flask --app X mcp-auth check`` exists even when the app cannot be created,
  which is exactly when a broken configuration needs checking: Flask looks up
  plugin commands before it loads the app;
* with ``app.cli.add_command`` in ``MCPAuth.init_app``, so that the commands
  are there without an installed distribution and through
  ``app.test_cli_runner().invoke(args=["mcp-auth", ...])``.

One module per command; :mod:`.loading` finds the configuration they work on.
No command ever prints a plain key id except ``generate-key``,
which prints the key it has just made and the entry to store.
"""

from __future__ import annotations

import click

from .check import check
from .generate_key import generate_key
from .list_keys import list_keys


@click.group("mcp-auth")
def mcp_auth_cli() -> None:
    """flask-mcp-auth: generate API keys, check the configuration, list keys."""


mcp_auth_cli.add_command(generate_key)
mcp_auth_cli.add_command(check)
mcp_auth_cli.add_command(list_keys)

__all__ = ["mcp_auth_cli"]
