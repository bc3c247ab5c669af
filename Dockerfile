# otelite on `scratch`: the static (musl) binaries are built beforehand by
# scripts/build-image.sh, since nothing can be pulled to compile in. Two
# images: `otelite` (the default, last stage) and `--target quickstart`, the
# example app for compose.yaml.
#
#   scripts/build-image.sh      # the release build, target/image/{otelite,quickstart,data/}, both images
#
# By hand, after that script's `cargo build` and copies:
#   podman build --format docker -t otelite .      # docker format keeps HEALTHCHECK

FROM scratch AS quickstart
COPY target/image/quickstart /quickstart
USER 65532:65532
ENV OTEL_EXPORTER_OTLP_ENDPOINT=http://otelite:4318 \
    OTELITE_QUERY_URL=http://otelite:16686
ENTRYPOINT ["/quickstart"]

FROM scratch AS otelite
COPY target/image/otelite /otelite
# An empty directory owned by the non-root user: a new named volume mounted
# here starts as a copy of it, so the server can create its database.
COPY --chown=65532:65532 target/image/data /data
USER 65532:65532
WORKDIR /data
# Inside the container listen on every interface (the binary's default is
# loopback); SQLite's temporary files go to the volume, as there is no /tmp.
ENV OTELITE_DB=/data/otelite.db \
    OTELITE_OTLP_LISTEN=0.0.0.0:4318 \
    OTELITE_OTLP_GRPC_LISTEN=0.0.0.0:4317 \
    OTELITE_QUERY_LISTEN=0.0.0.0:16686 \
    SQLITE_TMPDIR=/data
VOLUME ["/data"]
EXPOSE 4317 4318 16686
# `otelite health` GETs /readyz on the port of OTELITE_QUERY_LISTEN; with
# OTELITE_TLS_CERT set (TLS on) it speaks https and trusts that certificate.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/otelite", "health", "--timeout", "4s"]
ENTRYPOINT ["/otelite"]
CMD ["serve"]
