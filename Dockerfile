# War Room: one image for the API and the workers (see docker-compose.temporal.yml).
#   docker build -t warroom:0.1.0 .
#   docker run warroom:0.1.0                      → `warroom api --host 0.0.0.0 --port 8000`
#   docker run warroom:0.1.0 warroom worker       → a worker (WARROOM_REGION=<r> for a regional one)
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/warroom
WORKDIR /src
COPY pyproject.toml README.md ./
COPY warroom ./warroom
COPY connection ./connection
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY starters ./starters
RUN /opt/warroom/bin/pip install ".[otel]"

FROM python:3.11.11-slim-bookworm
# MALLOC_ARENA_MAX: glibc gives each thread that allocates an arena of its own, and a worker's
# threads (workflow tasks, store calls) keep their arenas' high-water marks; with two, the worker
# held 180 MB with 2,000 open rooms as with 500 (bench/run.py, scale).
ENV PATH=/opt/warroom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2
RUN useradd --system --uid 10001 --home-dir /app warroom && mkdir -p /app && chown warroom /app
COPY --from=build /opt/warroom /opt/warroom
COPY --chown=warroom runbooks /app/runbooks
WORKDIR /app
USER warroom
EXPOSE 8000 9464
# SIGTERM lets a worker finish in-flight activities (up to 20 s): give the container's stop
# timeout more than that (compose: stop_grace_period, Kubernetes: terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
CMD ["warroom", "api", "--host", "0.0.0.0", "--port", "8000"]
