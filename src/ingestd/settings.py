"""Configuration, from ``INGESTD_*`` environment variables (and a ``.env`` file). Pydantic at the boundary."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


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
    pipelines: list[str] | None = None  # None: every registered pipeline
    # User pipelines, "package.module:attribute" (a Pipeline, a list of them, or a function of Settings
    # returning either); env INGESTD_PIPELINE_MODULES='["myco.pipes:summarise"]'.
    pipeline_modules: list[str] = []

    # --- providers (see docs/providers.md) ---
    stt_provider: str = "offline"  # offline | deepgram | openai
    vad_provider: str = "offline"  # offline | hosted
    llm_provider: str = "offline"  # offline | openai
    embedding_provider: str = "offline"  # offline | openai
    deepgram_url: str = "https://api.deepgram.com"
    deepgram_api_key: str | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    openai_chat_model: str = "gpt-4o-mini"
    openai_stt_model: str = "whisper-1"
    openai_embedding_model: str = "text-embedding-3-small"
    hosted_vad_url: str | None = None
    provider_timeout_seconds: float = 120.0
