"""Verifying ingestd's webhooks (Standard Webhooks): needs the ``webhooks`` extra
(``pip install 'ingestd-client[webhooks]'``, the ``standardwebhooks`` package)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify_webhook"]


def verify_webhook(payload: bytes | str, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """Check a webhook ingestd sent (Standard Webhooks) and return its body; raise ``WebhookVerificationError``.

    ``payload`` is the raw request body (verify before parsing it), ``headers`` the request headers (any case),
    ``secret`` the tenant's ``whsec_...`` secret (``GET /v1/webhooks/secret``). The signature must match and the
    ``webhook-timestamp`` be within 5 minutes of now (replays of old deliveries fail). Deliveries are retried
    with the same ``webhook-id``: drop ids you have already handled::

        body = verify_webhook(request.body, request.headers, secret)
        if body["data"]["status"] == "succeeded": ...
    """
    data = payload.decode() if isinstance(payload, bytes) else payload
    verified = Webhook(secret).verify(data, dict(headers.items()))
    if not isinstance(verified, dict):
        raise WebhookVerificationError("the webhook body is not a JSON object")
    return verified
