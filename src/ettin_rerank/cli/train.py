"""Commands registered by this module (filled in by its issue)."""


def register(subparsers) -> None:
    del subparsers
