"""The optimization engine: losses, gradients, update rules, data sets and the train loop.

The maths is NumPy, laid out beside the notes (losses, gradients, optimizers, search, train);
the NumPy path is the reference every faster path is tested against. The faster paths are the
compiled kernels (numba: fused*, jit, warmup), the blocked passes (kernels) and the thread caps
(parallel, with threadpoolctl). Nothing here imports the service, a database or a web framework
(an import contract checks it), so the service can use the engine as a library.
"""
