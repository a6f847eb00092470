"""The step protocol of the driven interop clients: print "STEP <words>"
after each step, then wait for a line on stdin before the next one."""
import asyncio
import sys


def step(*words):
    print("STEP", *words, flush=True)


async def wait_for_go():
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise SystemExit("stdin closed")
