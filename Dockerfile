# One image for every Limitflow process; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md beat_schedule.py ./
COPY worker ./worker
COPY feed ./feed
COPY simulator ./simulator
COPY ops ./ops
RUN pip install . \
    && useradd --create-home --uid 10001 limitflow \
    && mkdir -p /app/var && chown limitflow /app/var

USER limitflow
CMD ["celery", "-A", "worker", "worker", "--loglevel", "INFO"]
