"""Every resource of the app is a route of the table, so the edge finds each one's class
(its budget, CORS policy and scope) rather than the default."""

from __future__ import annotations

from server.app import create_app
from server.config import Config
from server.edge.classes import canonical
from server.routes import ROUTES


def test_every_resource_is_found_in_the_route_table(config: Config) -> None:
    app = create_app(config)
    declared = {canonical(route.path) for route in ROUTES}
    served = {resource.canonical for resource in app.router.resources()}
    assert served <= declared, served - declared
    assert canonical("/api/videos/{video_id:[A-Za-z0-9_-]{11}}/hls/{rendition}") == (
        "/api/videos/{video_id}/hls/{rendition}")
