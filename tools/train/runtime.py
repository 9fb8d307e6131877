"""Process setup shared by the training and evaluation scripts."""
from __future__ import annotations

import ctypes

import torch

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def configure_cpu(threads: int) -> None:
    """Keeps freed tensors in glibc's heap: on this VM every page of a fresh mmap faults expensively, and by default
    glibc mmaps (and unmaps on free) every large tensor, so each training step re-faulted its activations."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's maximum
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    libc.mallopt(_M_TOP_PAD, 64 << 20)
    torch.set_num_threads(threads)
