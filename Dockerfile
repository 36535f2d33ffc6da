# The tars-agent image: a release build of the agent on a minimal runtime that runs it as
# nobody (65534), the user the manifests in deploy/ expect.
#
#   docker build -t registry.example.com/tars/tars-agent:0.1.0 .
#   docker push registry.example.com/tars/tars-agent:0.1.0
#
# (podman and buildah take the same arguments: `buildah bud -t ... .`). CI builds the
# runtime stage below from a prebuilt binary, without any registry:
# scripts/check-image.sh.

# Build stage: Debian 12's glibc, the same as the runtime stage's. rust-version in
# Cargo.toml is the oldest toolchain that builds the workspace; any newer one works.
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tars-agent \
    && install -D -m 0755 target/release/tars-agent /out/usr/local/bin/tars-agent

# Runtime stage: glibc and libgcc_s only (the agent links nothing else; NVML is loaded at
# run time from what the NVIDIA container runtime mounts), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12 AS runtime
COPY --from=build /out/ /
USER 65534:65534
EXPOSE 9400
ENTRYPOINT ["/usr/local/bin/tars-agent"]
