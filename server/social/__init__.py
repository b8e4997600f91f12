"""Subscriptions, comments, ratings, notifications and feeds (issue 6)."""
