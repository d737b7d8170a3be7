"""Alibaba's Python SDK against the platform: it subscribes to nothing (`_ss=1`), so everything it receives
comes from the broker's server-side subscriptions (issue 10, Done means)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from interop_clients import Platform, run_linkkit

from provision.cloud.console import DeviceRef, list_devices, set_property

POSTS = 100


def test_linkkit_gets_a_post_reply_for_each_of_100_posts(interop_tools: Path, platform: Platform) -> None:
    # The SDK holds at most 40 unanswered request ids (max_queued_message): without post_reply the 41st post
    # returns rc 1. Every one of the 100 posts must be accepted and answered with code 200.
    steps = [{"do": "post_properties", "count": POSTS, "params": {"LightSwitch": 1}}]
    events = run_linkkit(interop_tools, platform, "sdk-py-0001", steps)
    posts = [event for event in events if event["event"] == "prop_post"]
    replies = [event for event in events if event["event"] == "prop_post_reply"]
    assert [post["rc"] for post in posts] == [0] * POSTS
    assert sorted(reply["id"] for reply in replies) == sorted(post["id"] for post in posts)
    assert {reply["code"] for reply in replies} == {200}


def test_linkkit_receives_property_set_without_subscribing(interop_tools: Path, platform: Platform) -> None:
    events: list[dict[str, Any]] = []
    steps = [{"do": "await_property_set", "seconds": 15}]
    device = threading.Thread(target=lambda: events.extend(run_linkkit(interop_tools, platform, "sdk-py-0001", steps)))
    device.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = {d["device_name"]: d for d in list_devices(platform.cert_dir)}
        if seen.get("sdk-py-0001", {}).get("online"):
            break
        time.sleep(0.1)
    answer = set_property(
        platform.cert_dir,
        DeviceRef(platform.devices["sdk-py-0001"].product_key, "sdk-py-0001"),
        {"LightSwitch": 0},
        wait_s=10,
    )
    device.join(30)
    assert {"event": "await_property_set", "arrived": True} in events, events
    assert {"event": "prop_changed", "params": {"LightSwitch": 0}} in events
    assert answer["reply"]["code"] == 200
