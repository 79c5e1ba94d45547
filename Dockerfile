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
#
# Base images are pinned by digest: the digest of the multi-platform image index, so each
# platform of the build gets its own image, and a rebuild gets the same bytes whatever the tag
# points at by then. No `# syntax=` line either: the frontend would be one more image pulled by a
# mutable tag, and BuildKit's built-in Dockerfile frontend (Docker 23+, any buildx builder) runs
# RUN --mount. Refresh both pins together (the tag stays as documentation; the digest wins):
#   docker buildx imagetools inspect docker.io/library/rust:1.95-bookworm      # top "Digest:"
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot     # top "Digest:"
# (or `crane digest IMAGE`). The MediaType printed must be an image index listing linux/amd64
# and linux/arm64, not a single-platform manifest. docs/deploy.md ("Base image digests") says
# where each digest below was taken from.

# The AWS SDK crates need rustc >= 1.94.1 (workspace rust-version); the deploy check keeps the
# tag below at or above it. Build and runtime share Debian 12, so the glibc the binary links
# against is the one it runs on.
FROM docker.io/library/rust:1.95-bookworm@sha256:e99e99e1d37512e741713d282b65b6452385f7b57d1a86cbceffa2a3cc128970 AS build
WORKDIR /src
# The whole workspace (filtered by .dockerignore): cargo needs every member's manifest even to
# build one package.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p firetail-sidecar --bin firetail \
    && install -D -m 0755 target/release/firetail /out/firetail

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
# checkov:skip=CKV_DOCKER_2:No shell or HTTP client in the image; Kubernetes probes /healthz and /readyz on port 2020.
COPY --from=build /out/firetail /usr/local/bin/firetail
# glibc gives a multi-threaded process up to 8 malloc arenas per core, each keeping its own
# freed memory; two are plenty for the sidecar's few threads. Measured on 2,000,000 access-log
# lines, 4 runs each: `json` format peak RSS 38.6-40.6 MiB -> 33.7-37.5, `v2-zstd` 31.3-31.9 ->
# 29.5-30.1, CPU within noise (docs/BENCHMARKS.md, "Side by side with Fluent Bit, format v2").
ENV MALLOC_ARENA_MAX=2
# distroless's `nonroot` user; the manifests pin the same ids in securityContext.
USER 65532:65532
EXPOSE 2020
ENTRYPOINT ["/usr/local/bin/firetail"]
