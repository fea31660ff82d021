"""The Kubernetes example (deployments/kubernetes/, deployments/Dockerfile), validated offline with Prefect's own
APIs: the base job template as the server validates a work pool's (``WorkPoolCreate``), its variables as a JSON
schema, the job a worker would render from it (``BaseJobConfiguration.from_template_and_values``), the
deployment file as ``prefect deploy`` reads it (``PrefectYamlModel``), each deployment's job variables against the
template and its parameters against its flow's parameter schema. No cluster and no prefect-kubernetes needed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from flows.rpx_bench import rpx_bench
from flows.rpx_bench_matrix import rpx_bench_matrix

REPO = Path(__file__).resolve().parent.parent
KUBERNETES = REPO / "deployments" / "kubernetes"
FLOWS = {"flows/rpx_bench.py:rpx_bench": rpx_bench, "flows/rpx_bench_matrix.py:rpx_bench_matrix": rpx_bench_matrix}


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads((KUBERNETES / "base-job-template.json").read_text())


@pytest.fixture(scope="module")
def deployments() -> list[dict]:
    from prefect.cli.deploy._models import PrefectYamlModel

    raw = yaml.safe_load((KUBERNETES / "prefect.yaml").read_text())
    model = PrefectYamlModel.model_validate(raw)  # what `prefect deploy --prefect-file` reads
    assert model.pull == [{"flows.bootstrap.enter_checkout": {}}]
    return [deployment.model_dump(exclude_unset=True, mode="json") for deployment in model.deployments]


def test_the_base_job_template_is_a_valid_kubernetes_work_pool_template(template):
    from prefect.server.schemas.actions import WorkPoolCreate
    from prefect.utilities.schema_tools import is_valid_schema

    pool = WorkPoolCreate(name="rpx-kubernetes", type="kubernetes", base_job_template=template)
    assert pool.base_job_template == template  # every placeholder of the job is a declared variable
    is_valid_schema(template["variables"])  # raises on an invalid JSON schema


def render(template: dict, job_variables: dict) -> dict:
    """The job configuration a Kubernetes worker would build: the template's defaults, overlaid by
    ``job_variables``, rendered by Prefect's worker code (the fields of prefect-kubernetes' job configuration)."""
    from typing import Any, Optional

    from prefect.workers.base import BaseJobConfiguration

    class KubernetesJob(BaseJobConfiguration):
        job_manifest: dict[str, Any]
        cluster_config: Optional[dict[str, Any]] = None
        job_watch_timeout_seconds: Optional[int] = None
        pod_watch_timeout_seconds: int = 60
        stream_output: bool = True

    return asyncio.run(KubernetesJob.from_template_and_values(template, job_variables)).model_dump(mode="json")


def test_the_rendered_job_requests_one_gpu_and_mounts_the_data_volume(template):
    job = render(template, {"image": "registry.example.com/rpx-bench:test", "name": "rpx"})
    manifest = job["job_manifest"]
    assert manifest["kind"] == "Job" and manifest["spec"]["backoffLimit"] == 0
    pod = manifest["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.example.com/rpx-bench:test"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/opt/rpx-bench/rpx_results"]["subPath"] == "rpx_results" and "/data" in mounts
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "rpx-data"
    # One GPU slot limit per physical GPU of the cluster (its UUID), shared results storage for the matrix.
    assert job["env"]["RPX_GPU_SLOT_HOST"] == "k8s"
    assert job["env"]["PREFECT_LOCAL_STORAGE_PATH"].startswith("/data/")


def test_the_deployments_are_valid_for_the_template_and_their_flows(template, deployments):
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy
    from prefect.utilities.schema_tools import validate

    assert {d["name"] for d in deployments} == {"k8s-matrix-entry", "k8s-nightly-depth", "k8s-nightly-leaderboard"}
    for deployment in deployments:
        assert deployment["work_pool"]["name"] == "rpx-kubernetes"
        job_variables = deployment["work_pool"]["job_variables"]
        validate(job_variables, template["variables"], raise_on_error=True, ignore_required=True)
        flow = FLOWS[deployment["entrypoint"]]
        schema = flow.parameters.model_dump(mode="json")
        validate(deployment.get("parameters", {}), schema, raise_on_error=True, ignore_required=True)
        rendered = render(template, job_variables)["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
        gpus = rendered["resources"]["limits"]["nvidia.com/gpu"]
        if deployment["name"] == "k8s-nightly-leaderboard":
            assert gpus == 0  # the matrix flow only waits for its entries
            assert deployment["parameters"]["deployment"] == "rpx-bench/k8s-matrix-entry"
        else:
            assert gpus == 1
        if "nightly" in deployment["name"]:
            limit = deployment["concurrency_limit"]
            assert limit["limit"] == 1 and ConcurrencyLimitStrategy(limit["collision_strategy"]).value == "CANCEL_NEW"


def test_a_job_variable_the_template_does_not_allow_is_refused(template):
    from prefect.utilities.schema_tools import ValidationError, validate

    with pytest.raises(ValidationError):
        validate({"gpu_count": "one"}, template["variables"], raise_on_error=True, ignore_required=True)


def test_the_dockerfile_installs_the_package_with_the_cuda_build_of_torch():
    dockerfile = (REPO / "deployments" / "Dockerfile").read_text()
    torch_line = next(line for line in dockerfile.splitlines() if line.startswith('RUN pip install "torch'))
    assert "--index-url" in torch_line and "TORCH_INDEX_URL" in torch_line
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu" in dockerfile
    assert dockerfile.index('RUN pip install "torch') < dockerfile.index("pip install -e .")  # torch pinned first
    assert "WORKDIR /opt/rpx-bench" in dockerfile  # where the job template mounts rpx_results
