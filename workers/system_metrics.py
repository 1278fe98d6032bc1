"""What a run's training process uses, recorded beside its curves: CPU, resident memory and, where
an NVIDIA GPU and its driver are present, the GPU's utilisation and this process's GPU memory.

The run's recorder (``workers.recording.RunRecorder``) asks ``SystemSampler.sample_if_due`` on every
tick and records what it answers as ordinary metric points named ``system/...``: they are stored,
streamed and downsampled like the loss, at most once every ``SAMPLE_SECONDS``, so a long run adds
a few points a minute. The sampler measures the training process from outside (the recorder may
run in a process of its own), with psutil; it never fails a run: a process or a driver it cannot
read is logged once and skipped.
"""

from __future__ import annotations

import logging
import time

import psutil

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0
PREFIX = "system/"
CPU_PERCENT = f"{PREFIX}cpu_percent"  # of one core: a process busy on 4 cores reads 400
RSS_MB = f"{PREFIX}rss_mb"  # resident memory, MiB
MEMORY_PERCENT = f"{PREFIX}memory_percent"  # resident memory over the machine's
GPU_PERCENT = f"{PREFIX}gpu_percent"  # utilisation of the GPU(s) the process uses
GPU_MEMORY_MB = f"{PREFIX}gpu_memory_mb"  # the process's GPU memory, MiB


class SystemSampler:
    """Samples one process (``pid``) at most every ``interval`` seconds."""

    def __init__(self, pid: int, *, interval: float = SAMPLE_SECONDS):
        self.pid = pid
        self.interval = interval
        self._next_at = time.monotonic() + interval  # cpu_percent needs an interval behind it
        self._gpu = _Gpu.open()
        try:
            self._process: psutil.Process | None = psutil.Process(pid)
            self._process.cpu_percent(None)  # starts the interval the first sample is measured over
        except psutil.Error as error:
            log.warning("system metrics: cannot watch process %s: %s", pid, error)
            self._process = None

    def sample_if_due(self, now: float | None = None) -> dict[str, float]:
        """The values since the last sample, by point name, when ``interval`` has passed; else {}."""
        now = time.monotonic() if now is None else now
        if self._process is None or now < self._next_at:
            return {}
        self._next_at = now + self.interval
        return self.sample()

    def sample(self) -> dict[str, float]:
        if self._process is None:
            return {}
        try:
            with self._process.oneshot():
                values = {CPU_PERCENT: self._process.cpu_percent(None),
                          RSS_MB: self._process.memory_info().rss / 2**20,
                          MEMORY_PERCENT: self._process.memory_percent()}
        except psutil.Error as error:  # the process has ended: nothing more to measure
            log.info("system metrics: process %s cannot be read any more: %s", self.pid, error)
            self._process = None
            return {}
        if self._gpu is not None:
            values.update(self._gpu.sample(self.pid))
        return {name: round(value, 3) for name, value in values.items()}


class _Gpu:
    """NVML (nvidia-ml-py), when the driver is there: the utilisation of the devices on which the
    process holds memory, and that memory."""

    def __init__(self, nvml, handles: list):
        self.nvml = nvml
        self.handles = handles
        self.failed = False

    @classmethod
    def open(cls) -> _Gpu | None:
        try:
            import pynvml  # noqa: PLC0415 - optional at run time: no NVIDIA driver, no GPU metrics

            pynvml.nvmlInit()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(index) for index in range(pynvml.nvmlDeviceGetCount())]
        except Exception as error:  # noqa: BLE001 - ImportError, NVMLError (no driver, no device), ...
            log.debug("system metrics: no GPU metrics: %s", error)
            return None
        return cls(pynvml, handles) if handles else None

    def sample(self, pid: int) -> dict[str, float]:
        if self.failed:
            return {}
        try:
            used, memory = [], 0
            for handle in self.handles:
                processes = self.nvml.nvmlDeviceGetComputeRunningProcesses(handle)
                mine = [process for process in processes if process.pid == pid]
                if mine:
                    used.append(self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                    memory += sum(process.usedGpuMemory or 0 for process in mine)
        except self.nvml.NVMLError as error:
            log.warning("system metrics: GPU metrics stopped: %s", error)
            self.failed = True
            return {}
        if not used:  # the process does not use a GPU (a CPU run on a machine that has one)
            return {}
        return {GPU_PERCENT: sum(used) / len(used), GPU_MEMORY_MB: memory / 2**20}
