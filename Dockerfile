# ctistudio for teams: one image for the web app, the workers and the scheduler (see docker-compose.yml).
# Slim, non-root, exactly the locked dependencies; no model is baked in (LM Studio or another server
# answers; the embedded engine's models install into the /data volume on first use).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/ctistudio \
    PATH=/opt/ctistudio/bin:$PATH

# git: `ctistudio sigma index --git` and the scheduler's pull of a SigmaHQ clone
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin ctistudio \
    && mkdir -p /data \
    && chown ctistudio:ctistudio /data

WORKDIR /app
COPY requirements.lock ./
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps . && rm -rf /app/src

USER ctistudio
ENV CTISTUDIO_DATA_DIR=/data \
    CTISTUDIO_LOG_DIR=/data/logs \
    CTISTUDIO_MODELS_DIR=/data/models
VOLUME ["/data"]
EXPOSE 8001
CMD ["ctistudio", "serve", "--host", "0.0.0.0", "--port", "8001"]
