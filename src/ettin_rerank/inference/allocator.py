"""glibc's malloc tuned for CPU inference: freed activation buffers are kept for the next batch.

A CPU forward pass allocates and frees tensors of 0.1-32 MB (a batch of 2,048 tokens through a
1,536-wide feed-forward layer is 12 MB). torch's CPU allocator takes each from malloc and gives it
back at once, and glibc's defaults hand such blocks to the kernel: a block above the mmap threshold
(128 KB, raised on the fly to the largest block freed so far) is unmapped when freed, and free
memory above twice that threshold at the top of the heap is returned. The next batch then faults
every page in again, zero-filled by the kernel. Measured on a 2-vCPU AMD EPYC (avx2, fma), 2
threads, 200 SciFact pairs, exact fp32: the bundled model took 410,000-660,000 page faults per
pass and ran 1.11x faster (median of six alternating process pairs) with none; a random Ettin 17m
took 0 or 640,000 by the luck of the heap's layout in each process (41-43 or 25-29 pairs/s).

Fixing both thresholds (which also stops glibc moving the mmap threshold) keeps freed blocks below
32 MB in the heap for reuse; the process holds its peak working set instead (+54 MB resident
after the run above). PyTorch's CPU performance tuning guide reaches the same end
by preloading jemalloc or tcmalloc; this needs no extra library. `ETTIN_RERANK_MALLOC_TUNING=0`
leaves malloc as it is, as does an environment that sets glibc's own (`MALLOC_MMAP_THRESHOLD_`,
`MALLOC_TRIM_THRESHOLD_`, `MALLOC_TOP_PAD_`, or `glibc.malloc.*` in `GLIBC_TUNABLES`).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform

logger = logging.getLogger(__name__)

MALLOC_TUNING_ENV = "ETTIN_RERANK_MALLOC_TUNING"  # "0": leave glibc's malloc settings alone
# mallopt(3) parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# blocks up to this size come from the heap: glibc's ceiling for it on 64-bit (HEAP_MAX_SIZE / 2 = 32 MB)
MMAP_THRESHOLD_BYTES = 32 << 20
# free memory at the top of the heap kept up to this size instead of being returned to the kernel
TRIM_THRESHOLD_BYTES = 1 << 30


# glibc's own ways to set these from the environment: a process that uses one keeps its settings
GLIBC_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
GLIBC_TUNABLES_ENV = "GLIBC_TUNABLES"


def malloc_tuning_wanted() -> bool:
    """Not turned off ($ETTIN_RERANK_MALLOC_TUNING=0), and the environment does not tune glibc's
    malloc thresholds itself."""
    if os.environ.get(MALLOC_TUNING_ENV, "").strip() == "0":
        return False
    if any(name in os.environ for name in GLIBC_MALLOC_ENV):
        return False
    return "glibc.malloc." not in os.environ.get(GLIBC_TUNABLES_ENV, "")


def on_glibc() -> bool:
    """This process runs on Linux with glibc, whose `mallopt` takes these thresholds."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process (module docstring); True when they
    were set; False on another C library or platform, or where `malloc_tuning_wanted` says no."""
    if not (on_glibc() and malloc_tuning_wanted()):
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own C library
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    logger.debug("glibc malloc thresholds %s", "set" if ok else "refused")
    return ok


def malloc_tuned() -> bool:
    """This process runs with the tuning: `keep_freed_memory` was called (a CPU model was prepared)
    and glibc took it. Asking does not tune."""
    return keep_freed_memory.cache_info().currsize > 0 and keep_freed_memory()
