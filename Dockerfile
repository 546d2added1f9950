# aurous-mock in a container: binds 0.0.0.0:8080 inside; the control plane (/_mock/*) answers only
# when AUROUS_MOCK_CONTROL_TOKEN is set, because the server is then reachable beyond loopback.
# State is in memory unless told otherwise: `--store sqlite:////data/state.db` (mount a volume on /data) survives
# restarts; `--store redis://redis:6379/0 --workers N` shares one state between workers and replicas (compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md openapi.yaml control-openapi.yaml ./
COPY mockserver ./mockserver
COPY contracts ./contracts
# The same install the README uses (non-editable inside the image).
RUN python -m pip install . && useradd --create-home --uid 10001 aurous && mkdir /data && chown aurous /data
USER aurous
VOLUME /data

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/openapi.yaml', timeout=2).status == 200 else 1)"
CMD ["aurous-mock", "serve", "--host", "0.0.0.0", "--port", "8080"]
