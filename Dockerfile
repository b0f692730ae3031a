# The worker image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY schemas ./schemas
COPY models ./models
RUN pip install --no-cache-dir -e .
ENV STREAMS_WEB_HOST=0.0.0.0 \
    STREAMS_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 6066
CMD ["streams", "worker"]
