# nvda-forecast image for a Prefect docker or kubernetes work pool.
#   docker build -t nvda-forecast:0.1.0 .
# A Prefect worker replaces CMD with `prefect flow-run execute`; run alone, the image serves its
# own deployment, daily-forecast/nvda-daily-served (never the work pool's nvda-daily). Configuration (DATABASE_URL, PREFECT_API_URL, ...) comes from the
# environment at run time: nothing secret is baked in.
#
# The base is pinned by its full version tag. Where a registry is reached, pin its digest too
# (`docker buildx imagetools inspect python:3.11.14-slim-bookworm` prints it), e.g.
#   FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
# CI reaches no registry: .ci/run builds a local stand-in under this same name first.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    TF_CPP_MIN_LOG_LEVEL=3 \
    TF_ENABLE_ONEDNN_OPTS=0

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY forecasting ./forecasting
COPY db ./db
COPY flows ./flows
# The same install command as the README's "Install" section.
RUN python -m pip install .

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin forecast \
    && mkdir -p /home/forecast/data \
    && chown forecast:forecast /home/forecast/data
USER forecast
ENV NVDA_FORECAST_DATA_DIR=/home/forecast/data \
    PREFECT_HOME=/home/forecast/.prefect \
    PREFECT_RUNNER_SERVER_ENABLE=true
WORKDIR /home/forecast

# `nvda-forecast serve` answers on the runner's /health (127.0.0.1:8080) while it polls the API.
# A worker's container runs one flow run and exits; Prefect tracks it, so the check passes there.
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "flows.health"]

CMD ["nvda-forecast", "serve"]
