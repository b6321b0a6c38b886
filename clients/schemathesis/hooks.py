"""schemathesis hooks for the Stageflow run (loaded through SCHEMATHESIS_HOOKS).

The run must not destroy its own session. schemathesis reuses ids it read from earlier
responses (GET /me, the user list), so it would eventually delete or deactivate the very user
whose token it sends (the server lets a tenant admin do that to themselves). A request that
would change or delete one of the protected users (SF_PROTECTED_USERS, comma-separated ids:
the run's own identity) is redirected to an id that does not exist: it still goes out and its
404 is still checked against the document.

A long poll of the event feed (`GET /events?wait=`, up to 60 s) is shortened to at most one
second, still a valid value, so the run is not spent waiting.

The other operations that could end a session need no hook: logout and password change need a
refresh token or the current password, which the run never has; signing-key rotation keeps
earlier tokens valid; the operator's run comes after the tenant admin's and may delete only a
spare tenant (setup.py).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

PROTECTED = {v for v in os.environ.get("SF_PROTECTED_USERS", "").split(",") if v}
ABSENT_USER = "00000000-0000-7000-8000-000000000000"


MAX_WAIT = 1


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    path = case.operation.path
    # A long poll may hold a request up to 60 s; the run keeps `wait` valid but short.
    query = case.query if isinstance(case.query, dict) else None
    if path == "/api/v1/events" and query and isinstance(query.get("wait"), int):
        if 0 <= query["wait"] <= 60:
            query["wait"] = min(query["wait"], MAX_WAIT)
    if case.method.upper() not in ("PATCH", "DELETE") or not path.startswith("/api/v1/users/"):
        return
    parameters = case.path_parameters or {}
    if str(parameters.get("user_id")) in PROTECTED:
        parameters["user_id"] = ABSENT_USER


@schemathesis.serializer("message/rfc822")
def raw_mail(ctx: Any, value: Any) -> bytes:
    """POST /mail-channels/{id}/messages takes the raw message: what was generated for its
    binary body, as bytes (intake records whatever arrives; a message without a sender is
    refused by the channel, not by the HTTP layer)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
