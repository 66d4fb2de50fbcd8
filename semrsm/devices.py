"""Which device a computation runs on: the one set of rules and messages.

:func:`check_device` reads the text (no torch import, so a page can check a choice
before torch is loaded); :func:`resolve_device` turns it into a ``torch.device`` on this
machine. The library, the CLI, the model loader and the explorer all call these two, so a
device is accepted, and refused with a message, the same way everywhere.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["check_device", "resolve_device"]

#: what to write instead of a device that cannot run the computation
USE = "use 'auto', 'cpu' or 'cuda' (or 'cuda:<index>')"
_FORM = re.compile(r"(cpu|cuda)(:(0|[1-9][0-9]*))?")


def check_device(device: Any) -> str:
    """The device text with ``"gpu"`` read as ``"cuda"``; checked for form only.

    Accepted: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"gpu"``, ``"cpu:<index>"``,
    ``"cuda:<index>"``, or such a ``torch.device`` (read through ``str``).

    Returns
    -------
    str
        ``"auto"``, ``"cpu[:k]"`` or ``"cuda[:k]"``.

    Raises
    ------
    ValueError
        Not text (``None``, a number), or any other device (``"meta"``, ``"mps"``, a TPU:
        the computation needs real memory on a CPU or a CUDA GPU); the message names it.
    """
    if type(device).__name__ == "device" and type(device).__module__ == "torch":
        device = str(device)  # a torch.device, told apart without importing torch
    if not isinstance(device, str):
        raise ValueError(f"device: got {repr(device)[:40]}; {USE}")
    if device == "gpu":
        return "cuda"
    if device == "auto" or _FORM.fullmatch(device):
        return device
    raise ValueError(
        f"device: {device[:40]!r} cannot run the computation (unknown device, or not a CPU "
        f"or CUDA one); {USE}"
    )


def resolve_device(device: Any, tokens: Any = None) -> torch.device:
    """The ``torch.device`` a computation runs on.

    ``"auto"`` → the tokens' CUDA device if they are a tensor on one, else CUDA when a
    GPU is usable, else the CPU.

    Parameters
    ----------
    device : str or torch.device, see :func:`check_device`.
    tokens : optional; only read by ``"auto"`` (a CUDA tensor keeps its device).

    Raises
    ------
    ValueError
        A device :func:`check_device` refuses, or a CUDA request on a machine without a
        usable GPU or without that GPU index.
    """
    import torch

    text = check_device(device)
    if text == "auto":
        if isinstance(tokens, torch.Tensor) and tokens.is_cuda:
            return tokens.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(text)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={text!r}: no CUDA GPU is available here (CUDA is not available to "
            "torch); use device='cpu' or 'auto'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={text!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s); "
            "use 'cuda' or 'cuda:0'"
        )
    return dev
