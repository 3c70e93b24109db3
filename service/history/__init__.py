"""The history of a job's series: points, rollups, downsampling and reads.

Written by the worker (writes, rollup_store), read by the API (reads, answers, freshness, tails,
point_counts); the web side of it (routes, LiveReads) stays in service.jobs. Nothing here imports
the web framework's routing, so the worker can load the modules it writes with.
"""
