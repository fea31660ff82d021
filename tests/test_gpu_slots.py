"""GPU slots: the limit ``gpu-<host>-<physical index>`` of the GPU a run uses, held while its benchmark runs.

Slot names are checked on the CPU through the environment (``CUDA_VISIBLE_DEVICES``, ``RPX_GPU_SLOT_HOST``);
holding, waiting for and releasing slots against the session's real Prefect API; and a flow run that asked for
``cuda:0`` on this machine without CUDA runs on the CPU and takes no slot.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.rpx_bench import rpx_bench
from rpx_tasks.sample_data.builtin import BUILTIN_SAMPLE
from rpx_tasks.steps.gpu_slots import ensure_concurrency_limit, gpu_slot, gpu_slot_name, physical_gpu, slot_host
from tests.test_flows import flow_run_logs

pytest_plugins = ["tests.conftest_prefect"]


@pytest.fixture
def host(monkeypatch) -> str:
    """A fixed slot host for the test (``RPX_GPU_SLOT_HOST``), so limits of parallel tests never collide."""
    name = f"test-{time.monotonic_ns()}"
    monkeypatch.setenv("RPX_GPU_SLOT_HOST", name)
    return name


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "visible, device, physical",
    [
        (None, "cpu", None),
        (None, "cuda", "0"),
        (None, "cuda:3", "3"),
        ("4,5", "cuda", "4"),
        ("4,5", "cuda:1", "5"),
        (" 6 , 2 ", "cuda:1", "2"),
        ("GPU-8F2C1A3E-77aa-4B1E-9f00-1234567890AB", "cuda:0", "gpu-8f2c1a3e-77aa-4b1e-9f00-1234567890ab"),
        ("MIG-GPU-aa/1/0", "cuda:0", "mig-gpu-aa-1-0"),
        ("3", "cuda:2", "2"),  # beyond the list: CUDA would refuse it; the index is taken as physical
    ],
)
def test_the_slot_is_the_physical_gpu_under_cuda_visible_devices(monkeypatch, visible, device, physical):
    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setenv("RPX_GPU_SLOT_HOST", "node-a")
    assert physical_gpu(device) == physical
    assert gpu_slot_name(device) == (None if physical is None else f"gpu-node-a-{physical}")


@pytest.mark.parametrize(
    "nvidia, cuda, physical",
    [
        ("2", None, "2"),  # docker --gpus device=2: the container sees GPU 2 as cuda:0
        ("GPU-AB12", None, "gpu-ab12"),  # the Kubernetes device plugin names the GPU by its UUID
        ("all", None, "0"),
        ("void", None, "0"),
        ("2", "", "0"),  # CUDA_VISIBLE_DEVICES, even empty, is what CUDA reads
        ("2", "1", "1"),
    ],
)
def test_in_a_container_the_slot_is_the_gpu_the_runtime_gave_it(monkeypatch, nvidia, cuda, physical):
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", nvidia)
    if cuda is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cuda)
    assert physical_gpu("cuda:0") == physical


def test_the_slot_host_is_this_machine_or_the_configured_name(monkeypatch):
    monkeypatch.delenv("RPX_GPU_SLOT_HOST", raising=False)
    expected = socket.gethostname().split(".", 1)[0].lower()
    assert slot_host().replace("-", "") == "".join(c for c in expected if c.isalnum())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert gpu_slot_name("cuda:0") == f"gpu-{slot_host()}-1"
    monkeypatch.setenv("RPX_GPU_SLOT_HOST", "GPU_Node.7.cluster.local")
    assert slot_host() == "gpu-node-7-cluster-local"
    assert gpu_slot_name("cuda:0", host="Other Host") == "gpu-other-host-1"


# -- holding slots against the real API ----------------------------------------------------------


def test_one_benchmark_per_gpu_and_another_gpu_does_not_wait(prefect_client, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setenv("RPX_GPU_SLOT_HOST", f"node-{time.monotonic_ns()}")
    for device in ("cuda:0", "cuda:1"):  # as deployments/setup_prefect.py does
        ensure_concurrency_limit(gpu_slot_name(device))
    held, times = threading.Event(), {}

    def first() -> None:
        with gpu_slot("cuda:0"):
            held.set()
            time.sleep(3.0)
            times["first released"] = time.monotonic()

    def record(label: str, device: str) -> None:
        with gpu_slot(device):
            times[label] = time.monotonic()

    with ThreadPoolExecutor(max_workers=3) as pool:
        pool.submit(first)
        assert held.wait(30)
        same_gpu = pool.submit(record, "same GPU acquired", "cuda:0")
        other_gpu = pool.submit(record, "other GPU acquired", "cuda:1")
        same_gpu.result(), other_gpu.result()
    assert times["same GPU acquired"] >= times["first released"], times  # GPU 2 waited for its holder
    assert times["other GPU acquired"] < times["first released"], times  # GPU 3 did not
    for device, physical in (("cuda:0", "2"), ("cuda:1", "3")):
        limit = prefect_client.read_global_concurrency_limit_by_name(gpu_slot_name(device))
        assert limit.name.endswith(f"-{physical}") and limit.active_slots == 0 and limit.limit == 1


@pytest.mark.parametrize("error", [RuntimeError("the model exploded"), KeyboardInterrupt()])
def test_the_slot_is_released_when_the_benchmark_fails_or_is_interrupted(prefect_client, host, error):
    from prefect.exceptions import TerminationSignal

    with pytest.raises(type(error)):
        with gpu_slot("cuda:0"):
            raise error
    with pytest.raises(TerminationSignal):  # a cancelled flow run: SIGTERM raises TerminationSignal
        with gpu_slot("cuda:0"):
            raise TerminationSignal(15)
    assert prefect_client.read_global_concurrency_limit_by_name(f"gpu-{host}-0").active_slots == 0
    start = time.monotonic()
    with gpu_slot("cuda:0"):
        pass
    assert time.monotonic() - start < 30


def test_a_run_that_fell_back_to_the_cpu_takes_no_gpu_slot(prefect_client, host, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the run would use it")
    state = rpx_bench(
        task="monocular_depth",
        model="constant_depth",
        manifest=BUILTIN_SAMPLE,
        max_samples=2,
        device="cuda:0",
        output_dir=str(tmp_path / "fallback"),
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert "GPU slot" not in flow_run_logs(prefect_client, state.state_details.flow_run_id)
    from prefect.exceptions import ObjectNotFound

    with pytest.raises(ObjectNotFound):  # the run did not even create its GPU's limit
        prefect_client.read_global_concurrency_limit_by_name(f"gpu-{host}-0")


# -- a brief API outage --------------------------------------------------------------------------


class RenewalBlocker(BaseHTTPRequestHandler):
    """A reverse proxy to the Prefect API that answers 503 to every lease renewal while ``server.blocking``
    (counted in ``server.refused``; the renewals it lets through in ``server.renewed``)."""

    protocol_version = "HTTP/1.1"

    def forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.server.blocking and "/renew" in self.path:
            self.server.refused += 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        skip = {"host", "content-length", "connection", "accept-encoding"}
        headers = {key: value for key, value in self.headers.items() if key.lower() not in skip}
        request = urllib.request.Request(
            self.server.target + self.path, data=body, method=self.command, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, answer_headers, data = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, data = error.code, error.headers, error.read()
        if "/renew" in self.path and status < 300:
            self.server.renewed += 1
        self.send_response(status)
        for key, value in answer_headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    def log_message(self, *args) -> None:
        pass


def test_an_api_outage_neither_cancels_the_benchmark_nor_loses_its_slot(
    prefect_client, prefect_api_url, host, caplog, monkeypatch
):
    import logging

    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    caplog.set_level(logging.INFO, logger="rpx_tasks.steps")
    monkeypatch.setenv("RPX_GPU_SLOT_RENEW_S", "0.5")  # the keeper's renewals, instead of every 15 s
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), RenewalBlocker)
    proxy.target, proxy.blocking, proxy.refused, proxy.renewed = prefect_api_url.removesuffix("/api"), True, 0, 0
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}/api"
    finished = False
    try:
        # The API refuses every lease renewal: Prefect's own renewal gives up after 3 attempts (a few seconds).
        with temporary_settings(updates={PREFECT_API_URL: proxy_url, PREFECT_CLIENT_MAX_RETRIES: 0}):
            with gpu_slot("cuda:0"):
                deadline = time.monotonic() + 20
                while "Execution will continue" not in caplog.text and time.monotonic() < deadline:
                    time.sleep(0.2)
                time.sleep(1.0)  # past Prefect's give-up: a cancellation would land here
                proxy.blocking = False  # the outage ends: the keeper renews the lease again
                renewed_before = proxy.renewed
                deadline = time.monotonic() + 10
                while proxy.renewed == renewed_before and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert prefect_client.read_global_concurrency_limit_by_name(f"gpu-{host}-0").active_slots == 1
                finished = True
            # Prefect's event worker started here talks to the proxy: let it finish, so the next one uses the API.
            EventsWorker.drain_all(timeout=10)
    finally:
        proxy.blocking = False
        proxy.shutdown()
    assert finished and proxy.refused >= 3 and proxy.renewed > renewed_before
    assert "Concurrency lease renewal failed" in caplog.text and "Execution will continue" in caplog.text
    assert "Cannot renew the lease of GPU slot" in caplog.text and "is renewed again" in caplog.text
    assert prefect_client.read_global_concurrency_limit_by_name(f"gpu-{host}-0").active_slots == 0
