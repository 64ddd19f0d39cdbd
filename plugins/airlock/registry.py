"""A small OCI distribution client: manifests, blobs, mounts, tags.

Used where docker-py cannot answer a question without moving an image: "does prod-private
already hold this digest?", "which layers does this manifest have?", "point this tag at that
digest". It speaks HTTP basic auth and the bearer-token challenge flow (Docker Hub, Harbor,
GitLab, most hosted registries). Credentials never appear in errors or logs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import requests

from airlock.exceptions import RegistryAuthError, RegistryError

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    raw: bytes

    @property
    def body(self) -> dict:
        return json.loads(self.raw)

    @property
    def layers(self) -> list[str]:
        return [layer["digest"] for layer in self.body.get("layers", [])]

    @property
    def config_digest(self) -> str:
        return self.body.get("config", {}).get("digest", "")

    @property
    def size(self) -> int:
        """Bytes of blob data this manifest refers to (layers and config)."""
        body = self.body
        return sum(layer.get("size", 0) for layer in body.get("layers", [])) + body.get("config", {}).get("size", 0)


class RegistryClient:
    def __init__(self, address: str, *, scheme: str = "https", username: str | None = None,
                 password: str | None = None, name: str = "", timeout: float = 60.0):
        self.address = address
        self.base_url = f"{scheme}://{address}"
        self.name = name or address
        self._username = username
        self._password = password
        self._timeout = timeout
        self._session = requests.Session()
        # Every header costs bytes on a metered link: send only what the protocol needs.
        self._session.headers.clear()
        self._session.headers["User-Agent"] = "airlock"
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self.bytes_sent = 0  # request lines, headers and bodies this client sent (what a metered link bills)
        self.bytes_received = 0
        self._session.hooks["response"].append(self._count)

    def _count(self, response: requests.Response, *args, **kwargs) -> None:
        request = response.request
        head = len(f"{request.method} {request.path_url} HTTP/1.1\r\n") + sum(
            len(k) + len(str(v)) + 4 for k, v in request.headers.items()) + 2
        body = request.body
        self.bytes_sent += head + (len(body) if isinstance(body, (bytes, str)) else 0)
        self.bytes_received += sum(len(k) + len(str(v)) + 4 for k, v in response.headers.items()) + 17
        if not kwargs.get("stream") and response.headers.get("Content-Length", "").isdigit():
            self.bytes_received += int(response.headers["Content-Length"])

    def __repr__(self) -> str:  # never show credentials
        return f"RegistryClient({self.name} at {self.base_url})"

    # -- HTTP with auth -------------------------------------------------------------------
    def _request(self, method: str, path: str, *, scope: str, reference: str = "", **kwargs) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        headers = dict(kwargs.pop("headers", {}))
        data = kwargs.get("data")
        for attempt in range(2):
            if data is not None and hasattr(data, "seek"):
                data.seek(0)
            token = self._tokens.get(scope)
            auth = None
            if token:
                headers["Authorization"] = f"Bearer {token}"
            elif self._username:
                auth = (self._username, self._password or "")
            try:
                response = self._session.request(method, url, headers=headers, auth=auth,
                                                 timeout=self._timeout, **kwargs)
            except requests.RequestException as exc:
                raise RegistryError("cannot reach the registry", where=f"{self.name} ({self.base_url})",
                                    reference=reference, cause=type(exc).__name__ + ": " + _short(exc),
                                    retryable=True) from None
            if response.status_code != 401 or attempt:
                break
            challenge = response.headers.get("WWW-Authenticate", "")
            if not challenge.lower().startswith("bearer"):
                break
            self._tokens[scope] = self._fetch_token(challenge, scope, reference)
        if response.status_code in (401, 403):
            raise RegistryAuthError("the registry refused the login", where=f"{self.name} ({self.base_url})",
                                    reference=reference, cause=f"HTTP {response.status_code}",
                                    advice="Check the user and password in this registry's Airflow connection; "
                                           "retrying will not help.")
        return response

    def _fetch_token(self, challenge: str, scope: str, reference: str) -> str:
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm:
            raise RegistryError("the registry sent a bearer challenge without a realm",
                                where=self.name, reference=reference, retryable=False)
        query = {"service": params.get("service", ""), "scope": scope}
        auth = (self._username, self._password or "") if self._username else None
        try:
            response = self._session.get(realm, params=query, auth=auth, timeout=self._timeout)
        except requests.RequestException as exc:
            raise RegistryError("cannot reach the registry's token service", where=realm, reference=reference,
                                cause=_short(exc), retryable=True) from None
        if response.status_code in (401, 403):
            raise RegistryAuthError("the registry's token service refused the login", where=f"{self.name}",
                                    reference=reference, cause=f"HTTP {response.status_code}",
                                    advice="Check the user and password in this registry's Airflow connection.")
        self._raise_for(response, "token request", reference)
        data = response.json()
        return data.get("token") or data.get("access_token") or ""

    def _raise_for(self, response: requests.Response, what: str, reference: str) -> None:
        if response.status_code < 400:
            return
        detail = ""
        try:
            errors = response.json().get("errors", [])
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except ValueError:
            detail = response.text[:200]
        error = RegistryError(f"{what} failed", where=f"{self.name} ({self.base_url})", reference=reference,
                              cause=f"HTTP {response.status_code} {detail}".strip(),
                              retryable=response.status_code in TRANSIENT_STATUS)
        error.status = response.status_code
        raise error

    # -- manifests ---------------------------------------------------------------------------
    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        ref = f"{self.address}/{repository}:{reference}"
        response = self._request("GET", f"/v2/{repository}/manifests/{reference}",
                                 scope=f"repository:{repository}:pull", reference=ref,
                                 headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status_code == 404:
            return None
        self._raise_for(response, "reading the manifest", ref)
        digest = response.headers.get("Docker-Content-Digest", "")
        if not digest:
            import hashlib
            digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        return Manifest(digest=digest, media_type=response.headers.get("Content-Type", ""), raw=response.content)

    def has_manifest(self, repository: str, digest: str) -> bool:
        ref = f"{self.address}/{repository}@{digest}"
        response = self._request("HEAD", f"/v2/{repository}/manifests/{digest}",
                                 scope=f"repository:{repository}:pull", reference=ref,
                                 headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status_code == 404:
            return False
        self._raise_for(response, "checking the manifest", ref)
        return True

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> str:
        ref = f"{self.address}/{repository}:{tag}"
        response = self._request("PUT", f"/v2/{repository}/manifests/{tag}",
                                 scope=f"repository:{repository}:pull,push", reference=ref,
                                 headers={"Content-Type": manifest.media_type}, data=manifest.raw)
        self._raise_for(response, "writing the manifest", ref)
        return response.headers.get("Docker-Content-Digest", manifest.digest)

    def point_tag(self, repository: str, tag: str, manifest: Manifest) -> bool:
        """Make `tag` point at `manifest` (already in `repository`). False if it already did: nothing sent."""
        current = self.get_manifest(repository, tag)
        if current is not None and current.digest == manifest.digest:
            return False
        self.put_manifest(repository, tag, manifest)
        return True

    def tags(self, repository: str) -> list[str]:
        response = self._request("GET", f"/v2/{repository}/tags/list", scope=f"repository:{repository}:pull",
                                 reference=f"{self.address}/{repository}")
        if response.status_code == 404:
            return []
        self._raise_for(response, "listing tags", f"{self.address}/{repository}")
        return sorted(response.json().get("tags") or [])

    def catalog(self) -> list[str]:
        """Every repository, following the registry's pagination (Link headers)."""
        repositories: list[str] = []
        path: str | None = "/v2/_catalog?n=1000"
        while path:
            response = self._request("GET", path, scope="registry:catalog:*", reference="_catalog")
            self._raise_for(response, "listing repositories", "_catalog")
            repositories += response.json().get("repositories") or []
            next_link = response.links.get("next", {}).get("url")
            path = next_link if next_link and next_link.startswith("/") else None
        return sorted(repositories)

    # -- blobs -------------------------------------------------------------------------------
    def has_blob(self, repository: str, digest: str) -> bool:
        ref = f"{self.address}/{repository}@{digest}"
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}",
                                 scope=f"repository:{repository}:pull", reference=ref)
        if response.status_code == 404:
            return False
        self._raise_for(response, "checking a blob", ref)
        return True

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link a blob it holds in `from_repository` into `repository`.

        Returns True if the blob is now in `repository` (201); False if the registry started an
        upload instead (202: it does not have the blob there), whose session is then cancelled.
        """
        ref = f"{self.address}/{repository}@{digest}"
        response = self._request(
            "POST", f"/v2/{repository}/blobs/uploads/?mount={digest}&from={from_repository}",
            scope=f"repository:{repository}:pull,push repository:{from_repository}:pull", reference=ref)
        if response.status_code == 201:
            return True
        self._raise_for(response, "mounting a blob", ref)
        location = response.headers.get("Location")
        if response.status_code == 202 and location:
            url = location if location.startswith("http") else f"{self.base_url}{location}"
            try:
                self._session.delete(url, timeout=self._timeout)
            except requests.RequestException:
                pass
        return False


    def delete_blob(self, repository: str, digest: str) -> bool:
        """Delete a blob link from a repository. False if the registry does not allow deletes."""
        ref = f"{self.address}/{repository}@{digest}"
        response = self._request("DELETE", f"/v2/{repository}/blobs/{digest}",
                                 scope=f"repository:{repository}:delete", reference=ref)
        if response.status_code in (202, 404):
            return True
        if response.status_code in (405, 403):
            return False
        self._raise_for(response, "deleting a blob", ref)
        return True

    def open_blob(self, repository: str, digest: str) -> requests.Response:
        """GET a blob as a stream (the caller reads and closes it)."""
        ref = f"{self.address}/{repository}@{digest}"
        response = self._request("GET", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull",
                                 reference=ref, stream=True)
        self._raise_for(response, "reading a blob", ref)
        return response

    # -- uploads -----------------------------------------------------------------------------
    def _location(self, response: requests.Response, ref: str) -> str:
        location = response.headers.get("Location", "")
        if not location:
            raise RegistryError("the registry did not say where to upload", where=self.name, reference=ref,
                                retryable=True)
        return location if location.startswith("http") else f"{self.base_url}{location}"

    def start_upload(self, repository: str, digest: str = "") -> str:
        """POST an upload session; return its absolute location."""
        ref = f"{self.address}/{repository}@{digest}" if digest else f"{self.address}/{repository}"
        response = self._request("POST", f"/v2/{repository}/blobs/uploads/",
                                 scope=f"repository:{repository}:pull,push", reference=ref,
                                 headers={"Content-Length": "0"})
        self._raise_for(response, "starting an upload", ref)
        return self._location(response, ref)

    def _upload_path(self, location: str) -> str:
        return location.removeprefix(self.base_url)

    def upload_chunked_once(self, repository: str, digest: str, data: bytes) -> None:
        """Upload a blob as one PATCH and a closing PUT (for registries that refuse monolithic PUTs)."""
        location = self.start_upload(repository, digest)
        location = self.patch_chunk(repository, location, 0, data, digest)
        self.finish_upload(repository, location, digest)

    def upload_monolithic(self, repository: str, digest: str, data: bytes) -> None:
        """Upload a whole (small) blob: POST, then one PUT with the body and the digest."""
        ref = f"{self.address}/{repository}@{digest}"
        location = self.start_upload(repository, digest)
        sep = "&" if "?" in location else "?"
        response = self._request("PUT", f"{self._upload_path(location)}{sep}digest={digest}",
                                 scope=f"repository:{repository}:pull,push", reference=ref, data=data,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Content-Length": str(len(data))})
        self._raise_for(response, "uploading a blob", ref)

    def patch_chunk(self, repository: str, location: str, offset: int, data: bytes, digest: str = "") -> str:
        """PATCH one chunk at `offset` (Content-Range); return the next location."""
        ref = f"{self.address}/{repository}@{digest}"
        response = self._request("PATCH", self._upload_path(location), scope=f"repository:{repository}:pull,push",
                                 reference=ref, data=data,
                                 headers={"Content-Type": "application/octet-stream",
                                          "Content-Range": f"{offset}-{offset + len(data) - 1}",
                                          "Content-Length": str(len(data))})
        self._raise_for(response, "uploading a chunk", ref)
        return self._location(response, ref)

    def upload_status(self, repository: str, location: str) -> int | None:
        """How many bytes of an upload session arrived (GET → Range: 0-N); None if the session is gone."""
        ref = f"{self.address}/{repository}"
        response = self._request("GET", self._upload_path(location), scope=f"repository:{repository}:pull,push",
                                 reference=ref)
        if response.status_code == 404:
            return None
        self._raise_for(response, "asking an upload's status", ref)
        value = response.headers.get("Range", "")
        if not value:
            return 0
        return int(value.rsplit("-", 1)[1]) + 1

    def finish_upload(self, repository: str, location: str, digest: str) -> None:
        ref = f"{self.address}/{repository}@{digest}"
        sep = "&" if "?" in location else "?"
        response = self._request("PUT", f"{self._upload_path(location)}{sep}digest={digest}",
                                 scope=f"repository:{repository}:pull,push", reference=ref,
                                 headers={"Content-Length": "0"})
        self._raise_for(response, "completing an upload", ref)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."
