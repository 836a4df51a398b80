# One image recipe for the four services; the build arguments name the service:
#   docker build --build-arg SERVICE=execution --build-arg PORT=8004 -t tradestack-execution .
# Build with the repository root as context: every service needs `shared/` beside its folder.
FROM python:3.11-slim

# The service folder (market-data-gateway, regime-detection, risk-management, execution)
# and the port it listens on.
ARG SERVICE
ARG PORT
RUN test -n "$SERVICE" && test -n "$PORT" || { echo "build with --build-arg SERVICE=... --build-arg PORT=..."; exit 1; }

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    PORT=${PORT}

WORKDIR /app
# Runtime dependencies only, pinned by the lock file (a layer cached across code changes
# and shared by the four images).
COPY requirements-runtime.lock .
RUN pip install -r requirements-runtime.lock

# /data: where Execution keeps its ledger (a volume in docker-compose.yml); unused by the others.
RUN useradd --create-home --uid 10001 app && mkdir /data && chown app:app /data
COPY shared/ shared/
COPY ${SERVICE}/ ${SERVICE}/

USER app
WORKDIR /app/${SERVICE}
EXPOSE ${PORT}
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=2)"
# The service writes its own access line (shared.logs), so uvicorn's is off.
CMD ["sh", "-c", "exec uvicorn main:app --host 0.0.0.0 --port \"$PORT\" --no-access-log"]
