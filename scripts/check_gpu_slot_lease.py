"""Show that a GPU slot held by a killed run is freed by lease expiry, across a server restart.

Starts a local ``prefect server`` (temporary PREFECT_HOME, repossessor every 2 s) with the lease
storage given, has a child process take the slot of GPU 0 (``gpu-<host>-0``) the way ``run-benchmark`` does
(``rpx_tasks.steps.gpu_slots.gpu_slot``), SIGKILLs the child, restarts the server, and reports how
long after the kill the slot was free again. With ``--lease-storage memory`` (Prefect's default)
the restarted server has forgotten the lease and the slot stays taken::

    python scripts/check_gpu_slot_lease.py                         # filesystem lease storage
    python scripts/check_gpu_slot_lease.py --lease-storage memory  # the default, for comparison

Needs nothing but this checkout's environment (no GPU: the slot only names the device).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STORAGES = {
    "filesystem": "prefect.server.concurrency.lease_storage.filesystem",
    "memory": "prefect.server.concurrency.lease_storage.memory",
}

HOLDER = """
import time
from rpx_tasks.steps.gpu_slots import gpu_slot
with gpu_slot("cuda:0"):
    print("held", flush=True)
    time.sleep(3600)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    prefect = Path(sys.executable).with_name("prefect")
    server = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: healthy(port), 90, "the server to start")
    return server


def healthy(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(condition, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


def active_slots(env: dict[str, str]) -> int:
    code = (
        "from prefect.client.orchestration import get_client\n"
        "from rpx_tasks.steps.gpu_slots import gpu_slot_name\n"
        "with get_client(sync_client=True) as c:\n"
        "    print(c.read_global_concurrency_limit_by_name(gpu_slot_name('cuda:0')).active_slots)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease-storage", choices=sorted(STORAGES), default="filesystem")
    parser.add_argument("--give-up-s", type=float, default=150.0, help="how long to wait for the slot to free")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="rpx-lease-")
    port = free_port()
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",  # GPU 0 is physical GPU 0, whatever the caller's environment says
        "PREFECT_HOME": home,
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": STORAGES[args.lease_storage],
        "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "2",
    }
    server = start_server(env, port)
    holder = None
    try:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        print(f"lease storage {args.lease_storage}: slot of GPU 0 held, active slots {active_slots(env)}")
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        killed = time.monotonic()
        server.terminate()
        server.wait(timeout=60)
        server = start_server(env, port)
        print(f"holder SIGKILLed, server restarted after {time.monotonic() - killed:.1f} s")
        try:
            wait_until(lambda: active_slots(env) == 0, args.give_up_s, "the slot to be freed")
        except TimeoutError as error:
            print(f"slot NOT freed: {error} (active slots {active_slots(env)})")
            return 1
        print(f"slot freed {time.monotonic() - killed:.1f} s after the kill (lease 60 s + repossessor loop)")
        return 0
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
