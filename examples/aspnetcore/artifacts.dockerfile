# Stage 1: artifacts — the SDK, the source, and everything `dotnet publish` produces, split by name
# into /publish (third-party assemblies) and /sensitive (the company's own, e.g. MyProject*).
# Never pushed; Airlock removes it right after the other two stages are built.
FROM mcr.microsoft.com/dotnet/sdk:8.0
ARG AIRLOCK_OWN_FILES="MyProject*"
WORKDIR /src
COPY . .
RUN dotnet publish MyProject.Api/MyProject.Api.csproj -c Release -o /publish /p:UseAppHost=false
RUN mkdir -p /sensitive \
 && cd /publish \
 && for f in $AIRLOCK_OWN_FILES; do if [ -e "$f" ]; then mv "$f" /sensitive/; fi; done \
 && echo "own files:" && ls /sensitive
