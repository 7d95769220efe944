# One image for every role: `docker run anomaly <role>` (serve, gateway, trainer, predictor,
# metrics-consumer, training-data-consumer, migrate).

FROM rust:1.95-slim-bookworm AS chef
# librdkafka is built from source by rdkafka-sys: it needs a C/C++ toolchain, make and perl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential perl \
 && rm -rf /var/lib/apt/lists/* \
 && cargo install --locked cargo-chef@0.1.78
# A stripped binary without debug info; the same profile for the cached dependencies.
ENV CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
WORKDIR /src

# The dependency graph alone (cargo-chef's recipe): it changes only when Cargo.toml/lock do.
FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# Dependencies are built in their own layer, cached across source changes.
FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin anomaly
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
# APP_PORT unset: each role listens on its own port (8000 serve and the gateway, 8001-8004 the
# trainer, a predictor and the two consumers).
ENV APP_HOST=0.0.0.0 LOG_FORMAT=json
EXPOSE 8000 8001 8002 8003 8004
ENTRYPOINT ["anomaly"]
CMD ["serve"]
