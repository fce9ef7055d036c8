# ingestd: one image for every process (`ingestd api`, `ingestd worker`, `ingestd migrate`, `ingestd sim`).
# Slim, non-root, offline models baked in: the Whisper, Silero, spaCy, MiniLM and voice-encoder weights ship inside
# pip packages (docs/providers.md), so installing ingestd installs them and nothing is downloaded at run time.
# Not built on the machines this repository is developed on (no Docker there): docs/operations.md, "Deploy".

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/ingestd
WORKDIR /src
COPY clients/python clients/python
COPY pyproject.toml README.md ./
COPY src src
# The light client is its own distribution; the server depends on it.
RUN /opt/ingestd/bin/pip install ./clients/python . \
    && /opt/ingestd/bin/python -c "import ingestd.cli, ingestd_client"

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 --user-group ingestd \
    && mkdir -p /var/lib/ingestd && chown ingestd:ingestd /var/lib/ingestd
COPY --from=build /opt/ingestd /opt/ingestd
ENV PATH=/opt/ingestd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    INGESTD_HOST=0.0.0.0 \
    INGESTD_PORT=8000 \
    INGESTD_DATABASE_URL=sqlite:////var/lib/ingestd/ingestd.db \
    INGESTD_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/ingestd
EXPOSE 8000
ENTRYPOINT ["ingestd"]
CMD ["api"]
