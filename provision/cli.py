"""The `provision` command line: click wrappers over the library, no logic of their own."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from provision import __version__
from provision.errors import EXIT_OK, ProvisionError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provision")
def cli() -> None:
    """Provision ESP32 boards for Alibaba Cloud IoT Platform."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; expected failures become one line each on stderr and an exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="provision", standalone_mode=False)
    except ProvisionError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
