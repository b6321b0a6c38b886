"""Verifying a Stageflow webhook delivery in Python with the Standard Webhooks library.

    pip install standardwebhooks
    python verify.py <secret> <delivery-dir>...

In a receiver, call `verify(secret, request.headers, request.body)` before trusting the body:
it checks the signature and that the timestamp is within five minutes, and returns the event.
Deduplicate on `event["id"]` (also the `webhook-id` header): a delivery can come twice.
"""

import sys
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def verify(secret: str, headers: dict[str, str], body: bytes) -> dict:
    """The event, if the delivery is genuine; raises WebhookVerificationError otherwise."""
    return Webhook(secret).verify(body, headers)


def read_delivery(directory: Path) -> tuple[dict[str, str], bytes]:
    """A delivery as the test receiver stored it: one file per header, and the body."""
    headers = {
        name: (directory / name).read_text()
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    return headers, (directory / "body").read_bytes()


if __name__ == "__main__":
    secret, directories = sys.argv[1], [Path(p) for p in sys.argv[2:]]
    for directory in directories:
        headers, body = read_delivery(directory)
        event = verify(secret, headers, body)
        print(f"{directory.name}: genuine {event['type']} {event['id']}")
        try:
            verify(secret, headers, body.replace(b'"type"', b'"tyqe"'))
        except WebhookVerificationError:
            print(f"{directory.name}: a changed body is refused")
        else:
            sys.exit(f"{directory.name}: a changed body was accepted")
