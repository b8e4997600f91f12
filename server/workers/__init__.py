"""Transcoding: what the server asks of it (jobs), the queue's SQL, the pool and dispatcher
and one job's run (web process), and the worker process main (child).

Kept free of imports so that the worker processes' fork server, which preloads
`server.workers.child`, does not pull in aiohttp or the database layer.
"""
