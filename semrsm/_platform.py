"""A one-line description of the machine, for benchmark tables and training records."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine_description() -> str:
    """CPU model, core count and OS, e.g. ``"AMD EPYC, 2 cores, Linux 6.1"``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


#: files that exist where a GPU driver torch could use is installed (NVIDIA, ROCm, WSL)
_GPU_DEVICE_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, without importing torch where no GPU driver exists.

    On a machine without any of :data:`_GPU_DEVICE_FILES` torch cannot see a GPU, so the
    answer is False at once (importing torch takes seconds); otherwise, or when torch is
    already imported, torch is asked.
    """
    import sys

    if "torch" not in sys.modules and not any(Path(p).exists() for p in _GPU_DEVICE_FILES):
        return False
    import torch

    return bool(torch.cuda.is_available())
