"""Drives the real py-eureka-client through a trimmed delta queue.

Usage: py_delta_client.py EUREKA_URL FILLERS

Prints "STEP <name> ..." on stdout after each step and waits for a line on
stdin before the next one. Exits non-zero on any failure.
"""
import asyncio
import logging
import sys

import py_eureka_client.eureka_client as eureka_client

from steps import step, wait_for_go


def count(client, app):
    return len(client.applications.get_application(app).instances)


async def main(server, fillers):
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    client = eureka_client.EurekaClient(
        eureka_server=server,
        app_name="py-delta",
        instance_host="127.0.0.1",
        instance_ip="127.0.0.1",
        instance_port=9191,
        renewal_interval_in_secs=1,
        duration_in_secs=10,
    )
    await client.start()
    for _ in range(150):
        if count(client, "GHOST-APP") == 1:
            step("sees_ghost")
            break
        await asyncio.sleep(0.1)
    else:
        raise SystemExit("GHOST-APP never reached the client's cache")
    await wait_for_go()

    # The test removed GHOST-APP and registered the fillers so that the
    # delta queue dropped changes of the window: the client's refresh
    # (delta, reconciled by apps__hashcode) must still end up exact.
    for _ in range(300):
        ghost, filler = count(client, "GHOST-APP"), count(client, "FILLER-APP")
        if ghost == 0 and filler == fillers:
            step("converged")
            break
        await asyncio.sleep(0.1)
    else:
        raise SystemExit(f"never converged: ghost={ghost} fillers={filler}")
    await wait_for_go()

    await client.stop()
    step("stopped")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
