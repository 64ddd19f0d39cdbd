# Stage 2: third-party. The public runtime + third-party libraries only: safe to make public.
ARG RUNTIME_IMAGE=sandbox/runtime:latest
ARG ARTIFACTS_IMAGE
FROM ${ARTIFACTS_IMAGE} AS artifacts
FROM ${RUNTIME_IMAGE}
COPY --from=artifacts /publish/ /app/
