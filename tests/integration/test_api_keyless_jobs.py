"""What docs/api.md and the README promise about jobs submitted before any API key existed (open mode)."""

from __future__ import annotations

from api_support import ApiFactory, submit

from ingestd.api import auth


async def test_keyless_jobs_belong_to_tenant_default_and_a_key_of_that_tenant_sees_them(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(run_worker=False)
    job = (await submit(api, "noop")).json()  # open mode: no key anywhere yet
    store = api.app.state.store  # type: ignore[attr-defined]
    acme, default = [{"Authorization": f"Bearer {await auth.create_key(store, t)}"} for t in ("acme", "default")]
    assert (await api.get("/v1/jobs", headers=acme)).json()["jobs"] == []  # another tenant's: not listed
    listed = (await api.get("/v1/jobs", headers=default)).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
