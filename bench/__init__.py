"""deepnum's benchmarks (issue 4): micro-benchmarks of every op and end-to-end training epochs,
against hand-written NumPy and PyTorch CPU, written to a markdown report and JSON.

From the repository root, with deepnum installed (``python -m pip install ".[bench]"`` adds
PyTorch; without it the PyTorch columns stay empty):

    python -m bench                  # the full run: writes bench/RESULTS.md and bench/RESULTS.json
                                     # (whole epochs; about 20-30 minutes on the 2-core machine)
    python -m bench --quick          # every benchmark, few repeats, a fraction of each epoch (< 2 min)
    python -m bench --smoke          # tiny sizes: checks that the harness works (the test suite runs it)
    python -m bench --threads 2 --only 'gemm|epoch' --md /tmp/r.md --json /tmp/r.json
    python -m bench.compare --before old-*.json --after new-*.json   # is a change no slower?

Each (thread count, implementation) pair runs in its own process (``bench.run``) with the thread
variables below set before NumPy loads (OpenBLAS gets 1 thread except in the NumPy rows' process,
where it is the thing measured): thread pools of different libraries in one process spin after
their own work and starve each other's threads. The report names the kernels OpenBLAS runs (with
threadpoolctl, in the bench extra): where OPENBLAS_CORETYPE is set in the environment (some
machines set it for old OpenBLAS builds), NumPy runs that core's kernels rather than the best for
the CPU, so run ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m bench`` to compare
against NumPy at its best. Run the full benchmark on an otherwise idle machine: with other work on the
cores, the 2-thread rows (OpenMP, OpenBLAS and PyTorch threads alike) slow down many times over.
"""
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
IMPLEMENTATIONS = ("cpp", "numba", "numpy", "torch")
