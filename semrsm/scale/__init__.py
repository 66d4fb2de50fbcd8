"""Semantic RSMs beyond one process: tiles, a resumable tile store, Ray, and search.

=====================  ===================================================================
``tiles``              the B × B tiles of a square RSM, one tile's matched inner products
``store``              finished tiles on disk, content-keyed (resume after a crash)
``ray_pool``           Ray: connecting, the resources of a task, many tasks, retries
``tiled``              ``tiled_semantic_rsm``: plan, reuse, run (here or on Ray), kernels
``search``             a gallery index: pooled top-K, then semantic re-ranking
``cli``                ``python -m semrsm rsm --tile/--ray`` and ``python -m semrsm search``
=====================  ===================================================================

Nothing here is imported by ``import semrsm``; ``ray`` is imported only inside the
functions that use it (it is an optional dependency: ``pip install ray``).
"""
