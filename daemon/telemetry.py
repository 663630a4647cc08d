"""Device and host telemetry, sampled once a second and published as `devices` events.

Per GPU (NVML): VRAM used/total, utilisation, temperature, and the job holding it (from the
scheduler). Per job: VRAM of its processes (NVML's compute-process list matched against the job's
process tree) with the peak kept in the store. Host: CPU % and RAM through psutil. GPUs of an
injected test inventory have no live figures (reported as null); the CPU slot entry reports the
host's load.
"""

from __future__ import annotations

from typing import Any

import psutil

from .scheduler import Inventory, Scheduler


class Telemetry:
    def __init__(self, inventory: Inventory):
        self.inventory = inventory
        self._nvml = None
        if inventory.source == "nvml":
            import pynvml

            self._nvml = pynvml
        psutil.cpu_percent(None)  # prime the CPU counter

    def _gpu_sample(self, index: int) -> dict[str, Any]:
        if self._nvml is None:
            return {"used_mib": None, "utilization": None, "temperature_c": None, "pids": {}}
        nv = self._nvml
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        sample: dict[str, Any] = {"pids": {}}
        try:
            sample["used_mib"] = int(nv.nvmlDeviceGetMemoryInfo(handle).used // 2**20)
        except nv.NVMLError:
            sample["used_mib"] = None
        try:
            sample["utilization"] = int(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
        except nv.NVMLError:
            sample["utilization"] = None
        try:
            sample["temperature_c"] = int(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
        except nv.NVMLError:
            sample["temperature_c"] = None
        try:
            for proc in nv.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.usedGpuMemory is not None:
                    sample["pids"][proc.pid] = int(proc.usedGpuMemory // 2**20)
        except nv.NVMLError:
            pass
        return sample

    def sample(self, scheduler: Scheduler, job_pids: dict[int, set[int]]) -> tuple[dict, dict[int, int]]:
        """(the `devices` event body, VRAM in MiB per job id right now)."""
        devices = []
        job_vram: dict[int, int] = {}
        for device in self.inventory.gpus:
            live = self._gpu_sample(device.index)
            holder = scheduler.holders.get(device.index)
            for job_id, pids in job_pids.items():
                used = sum(mib for pid, mib in live["pids"].items() if pid in pids)
                if used:
                    job_vram[job_id] = job_vram.get(job_id, 0) + used
            if live["used_mib"] is not None:
                scheduler.free_mib[device.index] = device.total_mib - live["used_mib"]
            devices.append({"index": device.index, "kind": device.kind, "name": device.name,
                            "total_mib": device.total_mib, "used_mib": live["used_mib"],
                            "utilization": live["utilization"], "temperature_c": live["temperature_c"],
                            "job": holder})
        memory = psutil.virtual_memory()
        host = {"cpu_percent": psutil.cpu_percent(None), "cpu_count": psutil.cpu_count(),
                "ram_used_mib": int((memory.total - memory.available) // 2**20),
                "ram_total_mib": int(memory.total // 2**20)}
        cpu = {"index": "cpu", "kind": "cpu", "name": f"CPU ({host['cpu_count']} cores)",
               "slots": self.inventory.cpu_slots, "jobs": sorted(scheduler.cpu_holders),
               "utilization": host["cpu_percent"]}
        return {"devices": devices, "cpu": cpu, "host": host, "source": self.inventory.source}, job_vram


def process_tree(pid: int) -> set[int]:
    """pid and all its descendants (a job's ranks under torchrun are children of the launcher)."""
    try:
        proc = psutil.Process(pid)
        return {pid} | {child.pid for child in proc.children(recursive=True)}
    except psutil.Error:
        return set()
