import errno


class MediaError(Exception):
    """A source that cannot be turned into renditions; `reason` is shown to the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TranscodeCancelled(Exception):
    """Raised when `should_cancel` answered True; partial outputs are already removed."""


class OutOfSpace(Exception):
    """The disk is full, or free space fell below the floor the run was given: not the
    source's fault. Partial outputs are removed; finished renditions stay."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_FULL = (errno.ENOSPC, errno.EDQUOT)


def out_of_space(exc: BaseException) -> OutOfSpace | None:
    """An OutOfSpace for a write that failed because the disk is full (the exception or
    one it was raised from), else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OutOfSpace):
            return seen
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return OutOfSpace(f"the disk is full ({seen.strerror or 'no space left'})")
        seen = seen.__cause__ or seen.__context__
    return None
