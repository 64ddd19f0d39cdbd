# Hello: serves a greeting and a health endpoint with busybox httpd.
HELLO_VERSION=1.0.0
. /app/ThirdParty.Greeting.lib
www=/tmp/www
mkdir -p "$www"
echo "ok hello $HELLO_VERSION" > "$www/health"
greeting > "$www/index.html"
echo "hello $HELLO_VERSION listening on ${HELLO_LISTEN:-127.0.0.1:8080}"
exec httpd -f -p "${HELLO_LISTEN:-127.0.0.1:8080}" -h "$www"
