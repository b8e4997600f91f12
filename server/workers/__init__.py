"""Transcoding workers: the pool and dispatcher (web process) and the worker process main.

Kept free of imports so that the worker processes' fork server, which preloads
`server.workers.child`, does not pull in aiohttp or the database layer.
"""
