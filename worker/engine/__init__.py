"""Pure-NumPy optimization engine: losses, gradients, update rules, data sets and the train loop.

Imports only NumPy and the standard library, so the service can use it as a library.
"""
