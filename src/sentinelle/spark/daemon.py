"""PySpark worker daemon that loads Sentinelle before it forks Python workers.

PySpark starts one daemon per executor (``python -m pyspark.daemon``) and forks a
Python worker from it for each concurrent task; an idle worker is killed after a
minute and a new one forked for a later task. Each fresh worker used to import
numpy, Pillow, numba, the hashers and the index, and load the numba kernels from
their on-disk cache: 0.5-1 CPU-second, several seconds of wall time on a busy
machine, paid again by every worker of every job that starts after an idle minute.

With ``spark.python.daemon.module=sentinelle.spark.daemon`` (in
:data:`sentinelle.spark.session.DEFAULT_CONF`) the daemon does that once, before
the first fork: workers inherit the imported modules and compiled kernels
(copy-on-write). The bank matcher itself is still built per worker process from
the broadcast snapshot (:mod:`sentinelle.spark.cache`): it depends on the job.

Nothing here may start a thread (a fork copies only the forking thread): BLAS
is held to one thread (PySpark sets ``OMP_NUM_THREADS=1`` for its workers; it is
set here too for a daemon started some other way) and no numba parallel kernel
is run.
"""

from __future__ import annotations

import os
import sys


def preload() -> None:
    """Import the hashing and matching stack and warm its kernels (never raises)."""
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(k, "1")
    try:
        import io

        import numpy as np
        from PIL import Image

        from ..index.pdq_index import PDQIndex
        from ..signals.hasher import DEFAULT_SIGNALS, hash_bytes
        from . import cache, hashonly, media  # noqa: F401 - loaded for the workers

        buf = io.BytesIO()  # a tiny benign gradient, hashed on both PDQ paths
        ramp = np.add.outer(np.arange(64), np.arange(96)).astype(np.uint8)
        Image.fromarray(ramp).convert("RGB").save(buf, "JPEG")
        for exact in (False, True):
            hash_bytes(buf.getvalue(), name="warm.jpg", signals=DEFAULT_SIGNALS, exact=exact)
        ix = PDQIndex()
        ix.add(np.arange(4), np.zeros((4, 32), np.uint8))
        ix.search(np.zeros((1, 32), np.uint8), 31)
    except Exception as e:  # noqa: BLE001 - a worker then imports what it needs itself
        print(f"sentinelle.spark.daemon: preload failed: {e!r}", file=sys.stderr)


def main() -> None:
    preload()
    from pyspark.daemon import manager

    manager()


if __name__ == "__main__":
    main()
