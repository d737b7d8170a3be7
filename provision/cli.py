"""The `provision` command line: click wrappers over the library, no logic of their own."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

try:
    import click

    from provision import __version__
    from provision.cloud.commands import cloud_group
    from provision.errors import EXIT_ENVIRONMENT, EXIT_OK, EnvironmentProblem, ProvisionError
    from provision.station.commands import erase_command, flash_command, ledger_group
except KeyboardInterrupt:  # Ctrl-C while the command is still loading: as quiet as a Ctrl-C later (main)
    sys.stderr.write("interrupted while starting; nothing was done\n")
    raise SystemExit(130) from None

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
    from provision.cloud.sntp import serve_until_signalled

    serve_until_signalled(host, port, skew_s, announce=lambda line: click.echo(line))


@cli.command("broker")
@click.option("--csv", "csv_path", required=True, type=click.Path(path_type=Path), help="Devices the broker accepts.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address (0.0.0.0 for boards on the LAN).")
@click.option(
    "--port", default=8883, show_default=True, type=click.IntRange(0, 65535), help="TLS port (securemode 2; 0: any)."
)
@click.option(
    "--cert-dir",
    default=Path("out/broker"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Test CA and server certificate, kept across runs; clients trust DIR/ca.pem.",
)
@click.option("--san", "sans", multiple=True, help="Extra IP or host name for the server certificate (repeatable).")
@click.option("--allow-tcp", is_flag=True, help="Also accept securemode 3 on a plain TCP listener.")
@click.option(
    "--tcp-port", default=1883, show_default=True, type=click.IntRange(0, 65535), help="With --allow-tcp (0: any)."
)
@click.option("--max-skew", "max_skew_s", default=0, show_default=True, type=int, help="Seconds; 0: off.")
@click.option("--route", "routes", multiple=True, help="FROM_TOPIC_FILTER=TO_TOPIC message forwarding (repeatable).")
@click.option("--plugin", type=click.Path(dir_okay=False, path_type=Path), help="Prebuilt plugin (default: build it).")
@click.option(
    "--key-type",
    type=click.Choice(["rsa", "ecdsa"]),
    default="rsa",
    show_default=True,
    help="Server certificate key (RSA as Alibaba's endpoint; ecdsa: P-256).",
)
def broker_command(
    csv_path: Path,
    host: str,
    port: int,
    cert_dir: Path,
    sans: tuple[str, ...],
    allow_tcp: bool,
    tcp_port: int,
    max_skew_s: int,
    routes: tuple[str, ...],
    plugin: Path | None,
    key_type: str,
) -> None:
    """Run a local stand-in for Alibaba Cloud IoT's MQTT endpoint (Mosquitto) until Ctrl-C or SIGTERM."""
    from provision.cloud.broker import run_foreground

    run_foreground(
        csv_path,
        cert_dir,
        host=host,
        port=port,
        sans=sans,
        allow_tcp=allow_tcp,
        tcp_port=tcp_port,
        max_skew_s=max_skew_s,
        routes=routes,
        plugin=plugin,
        out=sys.stdout,
        key_type=key_type,
    )


# --- sign, check, gen-nvs, inspect, render-ca (provisioning core) -----------------------------------------


@cli.command("sign")
@click.option("--product-key", required=True)
@click.option("--device-name", required=True)
@click.option("--device-secret", required=True, envvar="PROVISION_DEVICE_SECRET", help="Or $PROVISION_DEVICE_SECRET.")
@click.option("--client-id", default=None, help="Default: the device name.")
@click.option("--timestamp", default="now", show_default=True, help="Milliseconds, 'now', or 'none' to leave it out.")
@click.option("--sign-method", type=click.Choice(["hmacmd5", "hmacsha1", "hmacsha256"]), default="hmacsha1")
@click.option("--secure-mode", type=click.Choice(["2", "3"]), default="2", show_default=True, help="2 TLS, 3 TCP.")
@click.option("--region", default="cn-shanghai", show_default=True)
@click.option("--endpoint", default=None, help="Instance endpoint host (default: ${pk}.iot-as-mqtt.${region}...).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def sign_command(
    product_key: str,
    device_name: str,
    device_secret: str,
    client_id: str | None,
    timestamp: str,
    sign_method: str,
    secure_mode: str,
    region: str,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Print the MQTT CONNECT parameters (client id, username, password, host, port) for one device."""
    import json

    from provision.signing import parse_timestamp, sign

    creds = sign(
        product_key,
        device_name,
        device_secret,
        client_id=client_id,
        timestamp=parse_timestamp(timestamp),
        sign_method=sign_method,
        secure_mode=int(secure_mode),
        region=region,
        endpoint=endpoint,
    )
    fields = creds.to_json_dict()
    click.echo(json.dumps(fields) if as_json else "\n".join(f"{name}: {value}" for name, value in fields.items()))


@cli.command("check")
@click.option("--csv", "csv_path", required=True, type=click.Path(path_type=Path), help="The devices CSV.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on success (problems stay lines on stderr).")
def check_command(csv_path: Path, as_json: bool) -> None:
    """Validate a devices CSV; print one summary line when it is good, every problem when not."""
    import json

    from provision.credentials import check_devices

    summary = check_devices(csv_path)
    click.echo(json.dumps(summary.to_json_dict()) if as_json else summary.line())


@cli.command("gen-nvs")
@click.option("--csv", "csv_path", required=True, type=click.Path(path_type=Path), help="The devices CSV.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output directory.")
@click.option("--archive", "archive_path", type=click.Path(path_type=Path), help="One tar file instead of --out.")
@click.option("--layout", type=click.Choice(["aliyun", "esp-aliyun"]), default="aliyun", show_default=True)
@click.option("--size", default="0x6000", show_default=True, help="Partition size, a multiple of 4096.")
@click.option("--encrypt", is_flag=True, help="Flash-encryption scheme: a fresh nvs_keys.bin per device.")
@click.option("--encrypt-hmac", is_flag=True, help="HMAC scheme (S2/S3/C3/C6/H2): a fresh hmac_key.bin per device.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on success.")
def gen_nvs_command(
    csv_path: Path,
    out_dir: Path | None,
    archive_path: Path | None,
    layout: str,
    size: str,
    encrypt: bool,
    encrypt_hmac: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Write DIR/<DeviceName>/nvs.bin (+ keys) for every device and DIR/manifest.json (or one --archive)."""
    import json

    from provision.errors import UsageProblem
    from provision.gen_nvs import parse_size, write_archive, write_partitions
    from provision.progress import terminal_progress

    if (out_dir is None) == (archive_path is None):
        raise UsageProblem("gen-nvs: give --out DIR or --archive FILE.tar (one of them)")
    if encrypt and encrypt_hmac:
        raise UsageProblem("--encrypt and --encrypt-hmac: choose one scheme")
    encryption = "xts" if encrypt else "hmac" if encrypt_hmac else "none"
    write = write_partitions if archive_path is None else write_archive
    with terminal_progress(sys.stderr, "devices") as progress:
        report = write(
            csv_path,
            out_dir or archive_path,
            layout=layout,
            size=parse_size(size),
            encryption=encryption,
            force=force,
            progress=progress,
        )
    click.echo(json.dumps(report.to_json_dict()) if as_json else report.line())


@cli.command("inspect")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--keys", "keys_path", type=click.Path(dir_okay=False, path_type=Path), help="nvs_keys partition.")
@click.option("--hmac-key", "hmac_key_path", type=click.Path(dir_okay=False, path_type=Path), help="32-byte HMAC key.")
@click.option("--show-secrets", is_flag=True, help="Print secret values instead of masking them.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (image, pages, scheme, entries).")
def inspect_command(
    image: Path, keys_path: Path | None, hmac_key_path: Path | None, show_secrets: bool, as_json: bool
) -> None:
    """Verify an NVS image (every page and entry CRC) and list its namespaces, keys, types and values."""
    import json

    from provision.inspect import inspect_image

    found = inspect_image(image, keys_path=keys_path, hmac_key_path=hmac_key_path)
    if as_json:
        click.echo(json.dumps(found.to_json_dict(show_secrets=show_secrets)))
        return
    for line in found.lines(show_secrets=show_secrets):
        click.echo(line)


@cli.command("render-ca")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="C header.")
@click.option("--pem", "pem_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path), help="Extra roots.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the header differs from the rendering.")
def render_ca_command(out_path: Path, pem_files: tuple[Path, ...], check: bool) -> None:
    """Render the root-CA bundle (GlobalSign R1 + R6 and any --pem) into a C header."""
    from provision.ca import check_header, collect_roots, render_header, write_header

    roots = collect_roots(pem_files, warn=lambda line: click.echo(line, err=True))
    text = render_header(roots)
    if check:
        check_header(out_path, text)
        click.echo(f"{out_path}: up to date ({len(roots)} roots)")
    else:
        try:
            write_header(out_path, text)
        except OSError as exc:  # the OS names the temp file beside the header: name the header instead
            raise EnvironmentProblem(
                f"{out_path}: cannot write it ({exc.strerror}): check that {out_path.parent} exists and is writable"
            ) from None
        click.echo(f"{out_path}: written ({len(roots)} roots)")


@cli.group("tsl")
def tsl_group() -> None:
    """The product's thing model (TSL exported from the console)."""


@tsl_group.command("render")
@click.option("--tsl", "tsl_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="TSL JSON.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Component.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when DIR differs from the rendering.")
def tsl_render_command(tsl_path: Path, out_dir: Path, check: bool) -> None:
    """Validate a TSL and render it into a C99 component (thing_model.h/.c, CMakeLists.txt)."""
    from provision.tsl import check_component, load_tsl, render_component, write_component

    files = render_component(load_tsl(tsl_path), tsl_path.name)
    if check:
        check_component(out_dir, files, tsl_path)
        click.echo(f"{out_dir}: up to date")
    else:
        write_component(out_dir, files)
        click.echo(f"{out_dir}: written ({len(files)} files)")


cli.add_command(flash_command)
cli.add_command(ledger_group)
cli.add_command(erase_command)
cli.add_command(cloud_group)


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
    except OSError as exc:
        # The OS refused a path the user named (--out in a missing or read-only place, a full disk): that is
        # one line naming the path, not a traceback. Paths and strerror carry no secret.
        where = f"{exc.filename}: " if exc.filename is not None else ""
        click.echo(f"{where}{exc.strerror or exc}", err=True)
        return EXIT_ENVIRONMENT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
