# labelqueue ML backend: `labelqueue serve` on port 9090, state in the /data volume.
# BASE: any image with Python 3.11+ whose `python` and `pip` are on PATH (the tests build one
# from Debian's packages where no registry of images is reachable).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LABELQUEUE_DATA_DIR=/data

WORKDIR /app
# Dependencies first, in their own layer: a change to the code alone rebuilds in seconds.
COPY pyproject.toml README.md ./
RUN python -c "import subprocess, sys, tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-cache-dir', *deps])"
COPY backend ./backend
COPY selection ./selection
COPY label_config ./label_config
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 labelqueue \
    && mkdir -p /data && chown labelqueue /data

USER 10001
VOLUME ["/data"]
EXPOSE 9090

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=4)"]

ENTRYPOINT ["labelqueue"]
CMD ["serve", "--host", "0.0.0.0", "--port", "9090", "--workers", "2"]
