# One image for every role: `docker run anomaly <role>` (serve, gateway, trainer, predictor,
# metrics-consumer, training-data-consumer, migrate).

FROM rust:1.95-slim-bookworm AS build
# librdkafka is built from source by rdkafka-sys: it needs a C/C++ toolchain, make and perl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential perl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin anomaly \
 && cp target/release/anomaly /usr/local/bin/anomaly

FROM debian:bookworm-slim
# curl answers the compose healthchecks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app anomaly \
 && mkdir -p /app/data && chown -R anomaly /app
COPY --from=build /usr/local/bin/anomaly /usr/local/bin/anomaly
USER anomaly
WORKDIR /app
ENV APP_HOST=0.0.0.0 APP_PORT=8000 LOG_FORMAT=json
EXPOSE 8000
ENTRYPOINT ["anomaly"]
CMD ["serve"]
