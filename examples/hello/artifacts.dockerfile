# Stage 1: artifacts. Source + compiled output, split into /publish (third-party files) and
# /sensitive (the company's own files, by name). Never pushed; Airlock removes it after use.
ARG SDK_IMAGE=sandbox/sdk:latest
FROM ${SDK_IMAGE}
ARG AIRLOCK_OWN_FILES="Hello.*"
COPY src/ /src/
RUN compile /src /publish \
 && mkdir -p /sensitive \
 && cd /publish \
 && for f in $AIRLOCK_OWN_FILES; do if [ -e "$f" ]; then mv "$f" /sensitive/; fi; done \
 && echo "third-party:" && ls /publish && echo "own:" && ls /sensitive
