"""`provision cloud ...`: the console commands, thin click wrappers over provision.cloud.console."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

__all__ = ["cloud_group"]


def _print(result: Any, as_json: bool, lines: list[str] | None = None) -> None:
    if as_json or lines is None:
        click.echo(json.dumps(result, separators=(",", ":")) if as_json else json.dumps(result, indent=1))
    else:
        for line in lines:
            click.echo(line)


_json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object (a JSON line per message).")
_device_option = click.option("--device", "device_text", required=True, help="PRODUCT_KEY/DEVICE_NAME.")
_wait_option = click.option(
    "--wait", "wait_s", default=5.0, show_default=True, type=click.FloatRange(0), help="Seconds for the reply; 0: none."
)


@click.group("cloud")
@click.option(
    "--cert-dir",
    default=Path("out/broker"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The --cert-dir of the running `provision broker` (its console.json).",
)
@click.pass_context
def cloud_group(ctx: click.Context, cert_dir: Path) -> None:
    """The console: act as the cloud towards devices on a running `provision broker`."""
    ctx.obj = cert_dir


@cloud_group.command("devices")
@_json_option
@click.pass_obj
def devices_command(cert_dir: Path, as_json: bool) -> None:
    """Devices the platform has seen: online or not, client id, since when, last IP, firmware version."""
    from provision.cloud.console import list_devices

    records = list_devices(cert_dir)
    lines = [
        f"{r['product_key']}/{r['device_name']}  {'online' if r['online'] else 'offline'}"
        f"  client={r['client_id'] or '-'}  ip={r['last_ip'] or '-'}  firmware={r['firmware_version'] or '-'}"
        for r in records
    ]
    _print({"devices": records}, as_json, lines or ["no device seen yet"])


@cloud_group.command("set-property")
@_device_option
@click.option("--params", required=True, help="JSON object, e.g. '{\"LightSwitch\":1}'.")
@_wait_option
@_json_option
@click.pass_obj
def set_property_command(cert_dir: Path, device_text: str, params: str, wait_s: float, as_json: bool) -> None:
    """Set properties on a device; prints its set_reply."""
    from provision.cloud.console import parse_device, parse_json_object, set_property

    result = set_property(cert_dir, parse_device(device_text), parse_json_object("--params", params), wait_s)
    _print(result, as_json, [json.dumps(result["reply"] if result["reply"] is not None else result["sent"])])


@cloud_group.command("invoke-service")
@_device_option
@click.option("--service", required=True, help="The service identifier of the thing model.")
@click.option("--params", default="{}", show_default=True, help="JSON object.")
@_wait_option
@_json_option
@click.pass_obj
def invoke_service_command(
    cert_dir: Path, device_text: str, service: str, params: str, wait_s: float, as_json: bool
) -> None:
    """Invoke a thing-model service; prints the device's reply."""
    from provision.cloud.console import invoke_service, parse_device, parse_json_object

    device = parse_device(device_text)
    result = invoke_service(cert_dir, device, service, parse_json_object("--params", params), wait_s)
    _print(result, as_json, [json.dumps(result["reply"] if result["reply"] is not None else result["sent"])])


@cloud_group.command("rrpc")
@_device_option
@click.option("--payload", required=True, help="The request body (any text; JSON by convention).")
@_wait_option
@_json_option
@click.pass_obj
def rrpc_command(cert_dir: Path, device_text: str, payload: str, wait_s: float, as_json: bool) -> None:
    """A synchronous call: waits for the device's RRPC response."""
    from provision.cloud.console import parse_device, rrpc

    result = rrpc(cert_dir, parse_device(device_text), payload, wait_s or 5.0)
    _print(result, as_json, [json.dumps(result["response"])])


@cloud_group.command("broadcast")
@click.option("--product", required=True, help="ProductKey.")
@click.option("--topic", required=True, help="Below /broadcast/{pk}/.")
@click.option("--payload", required=True)
@_json_option
@click.pass_obj
def broadcast_command(cert_dir: Path, product: str, topic: str, payload: str, as_json: bool) -> None:
    """Send one message to every device of a product listening on the broadcast topic."""
    from provision.cloud.console import broadcast

    result = broadcast(cert_dir, product, topic, payload)
    _print(result, as_json, [f"sent to {result['topic']}"])


@cloud_group.group("shadow")
def shadow_group() -> None:
    """The device shadow kept by the platform."""


@shadow_group.command("get")
@_device_option
@_json_option
@click.pass_obj
def shadow_get_command(cert_dir: Path, device_text: str, as_json: bool) -> None:
    """Print the shadow document (state.reported/desired, metadata, version)."""
    from provision.cloud.console import parse_device, shadow_get

    _print(shadow_get(cert_dir, parse_device(device_text)), as_json)


@shadow_group.command("set")
@_device_option
@click.option("--desired", required=True, help="JSON object merged into state.desired (null deletes a key).")
@_json_option
@click.pass_obj
def shadow_set_command(cert_dir: Path, device_text: str, desired: str, as_json: bool) -> None:
    """Write desired state; the device gets a shadow control message."""
    from provision.cloud.console import parse_device, parse_json_object, shadow_set

    _print(shadow_set(cert_dir, parse_device(device_text), parse_json_object("--desired", desired)), as_json)


@cloud_group.group("ota")
def ota_group() -> None:
    """Firmware updates over the air."""


@ota_group.command("push")
@_device_option
@click.option("--firmware", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The app image.")
@click.option("--version", "version", required=True, help="The version the device reports after the update.")
@click.option("--sign-method", type=click.Choice(["SHA256", "Md5"]), default="SHA256", show_default=True)
@click.option("--module", default="default", show_default=True, help="The OTA module name.")
@click.option(
    "--wait", "wait_s", default=0.0, show_default=True, type=click.FloatRange(0), help="Seconds to follow progress."
)
@click.option(
    "--drop-after", type=click.IntRange(1), default=None, help="Test hook: cut the first download after N bytes."
)
@_json_option
@click.pass_obj
def ota_push_command(
    cert_dir: Path,
    device_text: str,
    firmware: Path,
    version: str,
    sign_method: str,
    module: str,
    wait_s: float,
    drop_after: int | None,
    as_json: bool,
) -> None:
    """Serve an image over HTTPS and send the device the upgrade message; print its progress."""
    from provision.cloud.console import ota_push, parse_device

    def show(params: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps({"progress": params}, separators=(",", ":")))
        else:
            click.echo(f"progress: step {params.get('step')} {params.get('desc', '')}".rstrip())

    result = ota_push(
        cert_dir, parse_device(device_text), firmware, version,
        sign_method=sign_method, module=module, wait_s=wait_s, drop_after=drop_after, progress=show,
    )  # fmt: skip
    data = result["upgrade"]["data"]
    _print({"upgrade": result["upgrade"]}, as_json, [f"upgrade sent: version {data['version']}, {data['size']} bytes"])


@cloud_group.command("watch")
@click.option("--device", "device_text", default=None, help="PRODUCT_KEY/DEVICE_NAME (default: every device).")
@_json_option
@click.pass_obj
def watch_command(cert_dir: Path, device_text: str | None, as_json: bool) -> None:
    """Print every upstream message, one JSON line each, until Ctrl-C."""
    from provision.cloud.console import parse_device, watch

    device = parse_device(device_text) if device_text else None

    def emit(message: dict[str, Any]) -> None:
        click.echo(json.dumps(message, separators=(",", ":")), nl=True)

    try:
        watch(cert_dir, device, emit)
    except KeyboardInterrupt:
        pass
