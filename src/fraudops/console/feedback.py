"""An analyst's verdict on a transaction: who may give one is decided here, on the server, whatever the page
shows; the label itself is written by :func:`fraudops.console.queries.write_label`."""

from __future__ import annotations

from typing import Any

from fraudops.console.queries import write_label
from fraudops.console.users import User


class NotAllowed(PermissionError):
    """The person's role may not label transactions."""


def submit_label(conn: Any, user: User | None, transaction_id: str, verdict: str, note: str = "") -> bool:
    """Record ``user``'s verdict (fraud or genuine) on ``transaction_id``; whether anything changed.
    Raises :class:`NotAllowed` for a viewer or nobody, before anything is written."""
    if user is None or not user.can_label:
        role = user.role if user else "nobody logged in"
        raise NotAllowed(f"{role} may not label transactions: analysts only")
    return write_label(conn, transaction_id.strip(), verdict, user.name, note.strip())
