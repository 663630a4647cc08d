"""ftd on a real GPU (run on the GPU machine: pytest -m gpu tests/daemon): NVML discovery,
per-second telemetry while a real job trains, the job holding its GPU, per-job peak VRAM.

Set FTLAB_TEST_TOKENIZER to a folder with SmolLM2's tokenizer where the embedded model is absent.
"""

from __future__ import annotations

import os
import time

import pytest
from ftlab.daemon import client
from ftlab.daemon import protocol as P

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_tiny_llama(tmp_path_factory):
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA driver")
    from ftlab.engine.model.synthetic import build_model

    folder = os.environ.get("FTLAB_TEST_TOKENIZER")
    if not folder:
        from ftlab.engine.model.resolve import resolve_model

        folder = resolve_model("smollm2-135m-instruct")
    return build_model("tiny-llama", folder, tmp_path_factory.mktemp("gpu-tiny"))


def test_nvml_telemetry_and_a_real_gpu_job(start_ftd, short_dir, gpu_tiny_llama, helpers):
    daemon = start_ftd()  # no test inventory: NVML
    profile = helpers.write_profile(short_dir, gpu_tiny_llama, max_steps=150)
    with daemon.client() as ftd:
        devices = ftd.request(P.DEVICES)
        assert devices["source"] == "nvml" and devices["devices"]
        first = devices["devices"][0]
        assert first["total_mib"] > 1000 and first["name"]
        job_id = client.submit_file(ftd, profile, gpus=1)
        samples = []
        while True:
            job = ftd.request(P.SHOW, {"id": job_id})
            if job["state"] in client.TERMINAL_STATES:
                break
            gpu = {d["index"]: d for d in ftd.request(P.DEVICES)["devices"]}[job["devices"][0]]
            samples.append(gpu)
            time.sleep(0.5)
        log = ftd.request(P.LOGS, {"id": job_id})["data"]
    print("samples", samples[-3:], "job", {k: job[k] for k in ("state", "devices", "peak_vram_mib", "error")})
    assert job["state"] == "succeeded", log[-2000:]
    assert all(s["job"] == job_id for s in samples)
    live = [s for s in samples if s["used_mib"] is not None]
    assert live and all(s["temperature_c"] is not None and s["utilization"] is not None for s in live)
    assert job["peak_vram_mib"] and job["peak_vram_mib"] > 0
