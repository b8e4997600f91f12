"""The fast lane: remembered playlist answers sent without building an aiohttp request."""

from server.fastlane.answers import (
    AnswerBook,
    Offer,
    Revalidator,
    accepts_gzip,
    forget_answers,
    offer,
    plain_request,
    remember_offered,
)
from server.fastlane.protocol import LaneSite

__all__ = ["AnswerBook", "LaneSite", "Offer", "Revalidator", "accepts_gzip", "forget_answers",
           "offer", "plain_request", "remember_offered"]
