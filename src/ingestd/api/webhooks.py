"""Webhook routes: a tenant's signing secret (and its rotation with an overlap), endpoints and the event types
they get, a job's deliveries (attempts, last error), and redelivery of one.

Included by ``ingestd.api.observability``'s router. Endpoint URLs are checked like a job's ``webhook_url``
(``ingestd.webhooks.check_target``): a loopback, private, link-local or metadata target is a 422 problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from ingestd import errors, webhooks
from ingestd.api import views
from ingestd.api.auth import current_tenant
from ingestd.store import webhook_records
from ingestd.store.protocol import WebhookStore

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

router = APIRouter(tags=["webhooks"])
Tenant = Annotated[str, Depends(current_tenant)]


EventType = Literal["job.succeeded", "job.partial", "job.failed", "job.canceled", "job.progress"]
assert set(get_args(EventType)) == set(webhook_records.EVENT_TYPES)


class EndpointIn(BaseModel):
    """A URL that gets the tenant's jobs' events of ``event_types`` (default: the four terminal ones)."""

    url: str = Field(max_length=2000, pattern=r"^https?://")
    event_types: list[EventType] = Field(
        default=["job.succeeded", "job.partial", "job.failed", "job.canceled"], min_length=1
    )


class EndpointEvents(BaseModel):
    """What an endpoint gets from now on."""

    event_types: list[EventType] = Field(min_length=1)


class RotationIn(BaseModel):
    """How long the old secret keeps signing next to the new one (default ``webhook_secret_overlap_hours``;
    0: stop at once)."""

    overlap_seconds: float | None = Field(default=None, ge=0, le=30 * 86400)


def _outbox(request: Request) -> WebhookStore:
    store: Any = request.app.state.store
    if not isinstance(store, WebhookStore):
        raise errors.NotFound("this store keeps no webhooks")
    return store


@router.get("/v1/jobs/{job_id}/webhooks", summary="A job's webhook deliveries: attempts, last error, status")
async def job_webhooks(request: Request, job_id: str, tenant: Tenant) -> views.JSONOut:
    store: JobStore = request.app.state.store
    if await store.get_job(job_id, tenant) is None:
        raise errors.NotFound(f"no job {job_id!r}")
    return views.JSONOut({"deliveries": await _outbox(request).webhook_deliveries(job_id)})


@router.get("/v1/webhooks/secret", summary="The tenant's signing secret (whsec_...), created on first use")
async def webhook_secret(request: Request, tenant: Tenant) -> views.JSONOut:
    return views.JSONOut(await _outbox(request).webhook_secret_info(tenant))


@router.post(
    "/v1/webhooks/secret/rotate",
    summary="A new signing secret; the old one also signs until the overlap ends (both signatures are sent)",
)
async def rotate_webhook_secret(request: Request, tenant: Tenant, body: RotationIn | None = None) -> views.JSONOut:
    overlap = body.overlap_seconds if body is not None else None
    if overlap is None:
        overlap = request.app.state.settings.webhook_secret_overlap_hours * 3600
    return views.JSONOut(await _outbox(request).rotate_webhook_secret(tenant, overlap_seconds=overlap))


@router.get("/v1/webhooks/endpoints", summary="The tenant's webhook endpoints")
async def list_endpoints(request: Request, tenant: Tenant) -> views.JSONOut:
    return views.JSONOut({"endpoints": await _outbox(request).list_webhook_endpoints(tenant)})


@router.post("/v1/webhooks/endpoints", status_code=201, summary="Register an endpoint for some event types")
async def add_endpoint(request: Request, body: EndpointIn, tenant: Tenant) -> views.JSONOut:
    await webhooks.check_target(body.url, request.app.state.settings)  # 422 for a refused target
    endpoint = await _outbox(request).add_webhook_endpoint(tenant, body.url, body.event_types)
    return views.JSONOut(endpoint, status_code=201)


@router.patch("/v1/webhooks/endpoints/{endpoint_id}", summary="Change the event types an endpoint gets")
async def set_endpoint_events(
    request: Request, endpoint_id: str, body: EndpointEvents, tenant: Tenant
) -> views.JSONOut:
    endpoint = await _outbox(request).set_webhook_endpoint_events(tenant, endpoint_id, body.event_types)
    if endpoint is None:
        raise errors.NotFound(f"no webhook endpoint {endpoint_id!r}")
    return views.JSONOut(endpoint)


@router.delete("/v1/webhooks/endpoints/{endpoint_id}", status_code=204, summary="Remove an endpoint")
async def delete_endpoint(request: Request, endpoint_id: str, tenant: Tenant) -> Response:
    if not await _outbox(request).delete_webhook_endpoint(tenant, endpoint_id):
        raise errors.NotFound(f"no webhook endpoint {endpoint_id!r}")
    return Response(status_code=204)


@router.get("/v1/webhooks/deliveries/{delivery_id}", summary="One delivery: attempts, last error, status")
async def delivery(request: Request, delivery_id: str, tenant: Tenant) -> views.JSONOut:
    found = await _outbox(request).webhook_delivery(tenant, delivery_id)
    if found is None:
        raise errors.NotFound(f"no webhook delivery {delivery_id!r}")
    return views.JSONOut(found)


@router.post(
    "/v1/webhooks/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery again (same webhook-id, signed anew), whatever its status",
)
async def redeliver(request: Request, delivery_id: str, tenant: Tenant) -> views.JSONOut:
    outbox = _outbox(request)
    outcome = await outbox.redeliver_webhook(tenant, delivery_id)
    if outcome == "missing":
        raise errors.NotFound(f"no webhook delivery {delivery_id!r}")
    if outcome == "busy":
        raise errors.Conflict(f"webhook delivery {delivery_id!r} is being sent right now; ask again when it is done")
    found = await outbox.webhook_delivery(tenant, delivery_id)
    return views.JSONOut(found or {"id": delivery_id}, status_code=202)
