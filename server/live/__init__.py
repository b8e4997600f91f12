"""Live delivery of bus events to browsers and scripts: WebSocket (ws.py) and SSE (sse.py),
their shared connection checks (connect.py) and the hub of open connections (hub.py)."""
