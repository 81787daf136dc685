# nvda-forecast image for a Prefect docker or kubernetes work pool.
#   docker build -t nvda-forecast:0.1.0 .
# A Prefect worker replaces CMD with `prefect flow-run execute`; run alone, the image serves the
# daily deployment itself. Configuration (DATABASE_URL, PREFECT_API_URL, ...) comes from the
# environment at run time: nothing secret is baked in.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=3

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
ENV NVDA_FORECAST_DATA_DIR=/home/forecast/data
WORKDIR /home/forecast

CMD ["nvda-forecast", "serve"]
