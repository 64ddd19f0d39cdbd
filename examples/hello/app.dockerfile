# Stage 3: app. Third-party + one thin layer of the company's own compiled files.
ARG THIRD_PARTY_IMAGE
ARG ARTIFACTS_IMAGE
FROM ${ARTIFACTS_IMAGE} AS artifacts
FROM ${THIRD_PARTY_IMAGE}
COPY --from=artifacts /sensitive/ /app/
ENV HELLO_LISTEN=127.0.0.1:8080
HEALTHCHECK --interval=2s --timeout=3s --retries=3 \
  CMD wget -q -O /dev/null "http://${HELLO_LISTEN}/health" || exit 1
ENTRYPOINT ["/app/Hello.Server.bin"]
