"""Webhook routes: a tenant's signing secret and endpoints, and a job's deliveries (attempts, last error).

Included by ``ingestd.api.observability``'s router. Endpoint URLs are checked like a job's ``webhook_url``
(``ingestd.webhooks.check_target``): a loopback, private, link-local or metadata target is a 422 problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from ingestd import errors, webhooks
from ingestd.api import views
from ingestd.api.auth import current_tenant
from ingestd.store.protocol import WebhookStore

if TYPE_CHECKING:
    from ingestd.store.protocol import JobStore

router = APIRouter(tags=["webhooks"])
Tenant = Annotated[str, Depends(current_tenant)]


class EndpointIn(BaseModel):
    """A URL that gets a notification for every finished job of the tenant."""

    url: str = Field(max_length=2000, pattern=r"^https?://")


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
    return views.JSONOut({"secret": await _outbox(request).webhook_secret(tenant)})


@router.post("/v1/webhooks/secret/rotate", summary="Replace the tenant's signing secret")
async def rotate_webhook_secret(request: Request, tenant: Tenant) -> views.JSONOut:
    return views.JSONOut({"secret": await _outbox(request).webhook_secret(tenant, rotate=True)})


@router.get("/v1/webhooks/endpoints", summary="The tenant's webhook endpoints")
async def list_endpoints(request: Request, tenant: Tenant) -> views.JSONOut:
    return views.JSONOut({"endpoints": await _outbox(request).list_webhook_endpoints(tenant)})


@router.post("/v1/webhooks/endpoints", status_code=201, summary="Register an endpoint for every finished job")
async def add_endpoint(request: Request, body: EndpointIn, tenant: Tenant) -> views.JSONOut:
    await webhooks.check_target(body.url, request.app.state.settings)  # 422 for a refused target
    endpoint = await _outbox(request).add_webhook_endpoint(tenant, body.url)
    return views.JSONOut(endpoint, status_code=201)


@router.delete("/v1/webhooks/endpoints/{endpoint_id}", status_code=204, summary="Remove an endpoint")
async def delete_endpoint(request: Request, endpoint_id: str, tenant: Tenant) -> Response:
    if not await _outbox(request).delete_webhook_endpoint(tenant, endpoint_id):
        raise errors.NotFound(f"no webhook endpoint {endpoint_id!r}")
    return Response(status_code=204)
