"""``flask mcp-auth check``: validate the configuration as start-up does, then review it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from ..checks import Finding, review
from ..errors import ConfigError
from .loading import load_configuration

EXIT_OK = 0
EXIT_WARNINGS = 1
EXIT_ERRORS = 2


@click.command("check")
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
        key_count = len(loaded.state.store)
        findings = review(loaded.state, datetime.now(UTC))

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


__all__ = ["EXIT_ERRORS", "EXIT_OK", "EXIT_WARNINGS", "check"]
