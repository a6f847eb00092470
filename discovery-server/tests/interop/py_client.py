"""Drives the real py-eureka-client against our server, step by step.

Usage: py_client.py EUREKA_URL

Prints "STEP <name> ..." on stdout after each step and waits for a line on
stdin before the next one, so the Rust test can check the server in between.
Exits non-zero on any failure.
"""
import asyncio
import logging
import sys

import py_eureka_client.eureka_client as eureka_client
from py_eureka_client import eureka_basic

from steps import step, wait_for_go


async def main(server):
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    client = eureka_client.EurekaClient(
        eureka_server=server,
        app_name="py-app",
        instance_host="127.0.0.1",
        instance_ip="127.0.0.1",
        instance_port=9090,
        renewal_interval_in_secs=1,
        duration_in_secs=10,
        metadata={"team": "interop"},
    )
    await client.start()
    step("registered")
    await wait_for_go()

    # Discover another application, through the client's own cache (full
    # fetch at start, XML) and through a fresh fetch of /apps/.
    cached = client.applications.get_application("OTHER-APP")
    fresh = (await eureka_basic.get_applications(server)).get_application("OTHER-APP")
    if not cached.instances or not fresh.instances:
        raise SystemExit("OTHER-APP not discovered")
    instance = fresh.instances[0]
    step("discovered", fresh.name, instance.instanceId, instance.ipAddr, str(instance.port.port), instance.status)
    await wait_for_go()

    # The test registered LATE-APP: the client's own refresh (a delta fetch
    # each heartbeat, reconciled by apps__hashcode) must pick it up.
    for _ in range(150):
        late = client.applications.get_application("LATE-APP")
        if late.instances:
            step("refreshed", late.name, late.instances[0].instanceId)
            break
        await asyncio.sleep(0.1)
    else:
        raise SystemExit("LATE-APP never reached the client's cache")
    await wait_for_go()

    await client.status_update("OUT_OF_SERVICE")
    step("out_of_service")
    await wait_for_go()

    await client.stop()
    step("stopped")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
