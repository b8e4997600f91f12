class MediaError(Exception):
    """A source that cannot be turned into renditions; `reason` is shown to the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TranscodeCancelled(Exception):
    """Raised when `should_cancel` answered True; partial outputs are already removed."""
