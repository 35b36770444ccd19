# labelqueue ML backend: `labelqueue serve` on port 9090, state in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LABELQUEUE_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY selection ./selection
COPY label_config ./label_config
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 labelqueue \
    && mkdir -p /data && chown labelqueue /data

USER 10001
VOLUME ["/data"]
EXPOSE 9090

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=4)"]

ENTRYPOINT ["labelqueue"]
CMD ["serve", "--host", "0.0.0.0", "--port", "9090", "--workers", "2"]
