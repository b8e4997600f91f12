"""The edge of the server: what every request meets before its handler (CORS, metrics,
problem+json, rate limits, identity) and the headers every response leaves with."""
