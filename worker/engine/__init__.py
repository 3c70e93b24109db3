"""The optimization engine: losses, gradients, update rules, data sets and the train loop.

The maths is NumPy, laid out beside the notes (losses, gradients, optimizers, search, train);
the NumPy path is the reference every faster path is tested against. The faster paths live in
`accel`: the blocked passes (kernels), the engine's threads and BLAS's cap (parallel, with
threadpoolctl), and the compiled kernels (numba: fused*, jit, warmup) behind one backend choice,
`accel.configure`, made once when a worker process starts; the maths asks `accel.active()` which
backend is in effect. Only `accel` imports numba, and importing the engine changes neither the
process environment nor numba's configuration. Nothing here imports the service, a database or a
web framework (import contracts check both), so the service can use the engine as a library.
"""
