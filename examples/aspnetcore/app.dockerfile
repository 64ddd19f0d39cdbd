# Stage 3: app — third-party plus one thin layer of the company's own compiled files.
# The only layer that crosses the metered link into prod.
ARG THIRD_PARTY_IMAGE
ARG ARTIFACTS_IMAGE
FROM ${ARTIFACTS_IMAGE} AS artifacts
FROM ${THIRD_PARTY_IMAGE}
COPY --from=artifacts /sensitive/ /app/
ENV ASPNETCORE_URLS=http://+:8080
EXPOSE 8080
ENTRYPOINT ["dotnet", "MyProject.Api.dll"]
