# syntax=docker/dockerfile:1
#
# The firetail sidecar image.
#
# Layout
#   build    compiles the `firetail` binary (package firetail-sidecar) in release mode
#   runtime  distroless "cc" (glibc and libgcc only: no shell, no package manager), non-root
#
# Multi-arch, each platform compiled natively (a native builder or QEMU), so there is no
# cross toolchain to keep in step with the AWS SDK's C dependencies:
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/firetail:TAG --push .
# The deploy check runs the same cargo command (FIRETAIL_RELEASE_BUILD=1) to prove it compiles.

# The AWS SDK crates need rustc >= 1.94.1 (workspace rust-version); the deploy check keeps this
# at or above it. Build and runtime share Debian 12, so the glibc the binary links against is
# the one it runs on.
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The whole workspace (filtered by .dockerignore): cargo needs every member's manifest even to
# build one package.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p firetail-sidecar --bin firetail \
    && install -D -m 0755 target/release/firetail /out/firetail

FROM gcr.io/distroless/cc-debian12:nonroot
# checkov:skip=CKV_DOCKER_2:No shell or HTTP client in the image; Kubernetes probes /healthz and /readyz on port 2020.
COPY --from=build /out/firetail /usr/local/bin/firetail
# distroless's `nonroot` user; the manifests pin the same ids in securityContext.
USER 65532:65532
EXPOSE 2020
ENTRYPOINT ["/usr/local/bin/firetail"]
