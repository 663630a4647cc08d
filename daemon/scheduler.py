"""Which devices exist and which queued job gets which of them.

Inventory: NVIDIA GPUs through NVML (`pynvml`, from nvidia-ml-py) when the driver answers;
otherwise the machine's CPU as `cpu_slots` job slots (default 1). Ascend NPUs and ROCm GPUs are
not claimed: nothing here could exercise them. Tests inject an inventory through the documented
test seam `FTLAB_TEST_INVENTORY=<file.json>` (a list of `{"index", "name", "total_mib"}`); ftd
then schedules on those indices exactly as on real GPUs (the job processes still compute on the
CPU of a machine without CUDA).

Policy: a job asks for N GPUs (0 = the CPU) and optionally a minimum free VRAM per GPU; jobs
are considered highest priority first, FIFO within a priority; a job only ever gets devices no
other job holds (training jobs never share a GPU). A waiting job at the head of the queue does not
block smaller jobs behind it when they fit elsewhere ("backfill") — except that a job never
overtakes one of higher priority. Requests that can never fit (more GPUs than exist, more VRAM
than any GPU has) are refused at submit with the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

TEST_INVENTORY_ENV = "FTLAB_TEST_INVENTORY"


@dataclass
class Device:
    index: int
    name: str
    total_mib: int
    kind: str = "cuda"  # "cuda" or "cpu"
    uuid: str = ""


@dataclass
class Inventory:
    gpus: list[Device] = field(default_factory=list)
    cpu_slots: int = 1
    source: str = "none"  # "nvml", "test-inventory" or "none"


def _nvml_devices() -> list[Device]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # no driver, no GPU: NVMLError_LibraryNotFound / DriverNotLoaded
        return []
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        devices.append(Device(index, name, int(memory.total // 2**20), "cuda",
                              uuid.decode() if isinstance(uuid, bytes) else uuid))
    return devices


def discover(cpu_slots: int = 1) -> Inventory:
    """The devices this machine has (or the injected test inventory)."""
    test_file = os.environ.get(TEST_INVENTORY_ENV)
    if test_file:
        entries = json.loads(Path(test_file).read_text())
        gpus = [Device(int(e["index"]), str(e.get("name", f"test-gpu-{e['index']}")), int(e.get("total_mib", 81920)))
                for e in entries]
        return Inventory(gpus=gpus, cpu_slots=cpu_slots, source="test-inventory")
    gpus = _nvml_devices()
    return Inventory(gpus=gpus, cpu_slots=cpu_slots, source="nvml" if gpus else "none")


@dataclass
class Request:
    job_id: int
    gpus: int
    min_vram_mib: int | None = None
    priority: int = 0


class Scheduler:
    """Tracks which job holds which device and grants devices to queued jobs."""

    def __init__(self, inventory: Inventory):
        self.inventory = inventory
        self.holders: dict[int, int] = {}       # gpu index → job id
        self.cpu_holders: set[int] = set()      # job ids on CPU slots
        self.free_mib: dict[int, int | None] = {}  # live free VRAM per GPU (telemetry), None unknown

    def default_gpus(self) -> int:
        return 1 if self.inventory.gpus else 0

    def check(self, gpus: int, min_vram_mib: int | None) -> str | None:
        """Why this request can never be met, or None."""
        count = len(self.inventory.gpus)
        if gpus < 0:
            return "--gpus must be 0 (CPU) or more"
        if gpus > count:
            have = f"{count} GPU{'s' if count != 1 else ''}" if count else "no GPU (jobs run on the CPU: use --gpus 0)"
            return f"asks for {gpus} GPU{'s' if gpus != 1 else ''} but this machine has {have}"
        if gpus == 0 and self.inventory.cpu_slots < 1:
            return "CPU jobs are disabled on this daemon (--cpu-slots 0)"
        if min_vram_mib and gpus:
            fitting = [d for d in self.inventory.gpus if d.total_mib >= min_vram_mib]
            if len(fitting) < gpus:
                biggest = max(d.total_mib for d in self.inventory.gpus)
                return (f"asks for {min_vram_mib} MiB per GPU on {gpus} GPU(s) but only {len(fitting)} GPU(s) "
                        f"have that much (largest: {biggest} MiB)")
        return None

    def _fits(self, device: Device, min_vram_mib: int | None) -> bool:
        if device.index in self.holders:
            return False
        if not min_vram_mib:
            return True
        free = self.free_mib.get(device.index)
        return (free if free is not None else device.total_mib) >= min_vram_mib

    def grant(self, request: Request) -> list[int] | None:
        """Devices for this request now (and mark them held), or None if it must wait."""
        if request.gpus == 0:
            if len(self.cpu_holders) < self.inventory.cpu_slots:
                self.cpu_holders.add(request.job_id)
                return []
            return None
        free = [d for d in self.inventory.gpus if self._fits(d, request.min_vram_mib)]
        if len(free) < request.gpus:
            return None
        chosen = [d.index for d in free[: request.gpus]]
        for index in chosen:
            self.holders[index] = request.job_id
        return chosen

    def plan(self, queue: list[Request]) -> list[tuple[Request, list[int]]]:
        """Grants for a queue already in priority/FIFO order; lower priority never overtakes."""
        grants = []
        blocked_priority = None
        for request in queue:
            if blocked_priority is not None and request.priority < blocked_priority:
                break
            devices = self.grant(request)
            if devices is None:
                if blocked_priority is None:
                    blocked_priority = request.priority
                continue
            grants.append((request, devices))
        return grants

    def hold(self, job_id: int, devices: list[int], gpus: int) -> None:
        """Mark devices held by a job found running at start (re-attach)."""
        if gpus == 0:
            self.cpu_holders.add(job_id)
        for index in devices:
            self.holders[index] = job_id

    def release(self, job_id: int) -> None:
        self.cpu_holders.discard(job_id)
        for index in [i for i, holder in self.holders.items() if holder == job_id]:
            del self.holders[index]
