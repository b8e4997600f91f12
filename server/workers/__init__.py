"""Transcoding workers: the pool and dispatcher (web process) and the worker process main.

Kept free of imports so that a spawned worker process, which imports
`server.workers.child`, does not pull in aiohttp or the database layer.
"""
