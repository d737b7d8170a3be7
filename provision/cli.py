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


@cli.command("sntp-serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (a QEMU guest reaches 127.0.0.1 as 10.0.2.2).",
)
@click.option("--port", default=123, show_default=True, type=click.IntRange(0, 65535), help="UDP port (0: any free).")
@click.option("--skew-s", default=0.0, show_default=True, type=float, help="Seconds added to the host clock.")
def sntp_serve(host: str, port: int, skew_s: float) -> None:
    """Serve the host clock over SNTP (for devices in QEMU) until Ctrl-C or SIGTERM."""
    from provision.sntp_responder import serve_until_signalled

    serve_until_signalled(host, port, skew_s, announce=lambda line: click.echo(line))


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
