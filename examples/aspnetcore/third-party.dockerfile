# Stage 2: third-party — the public ASP.NET Core runtime and the third-party assemblies only.
# Safe to push to a public registry; prod pulls it from there, not over the metered link.
ARG ARTIFACTS_IMAGE
FROM ${ARTIFACTS_IMAGE} AS artifacts
FROM mcr.microsoft.com/dotnet/aspnet:8.0
WORKDIR /app
COPY --from=artifacts /publish/ /app/
