"""A contract-test server for the Kubernetes API calls dagster-k8s makes, whose Jobs run as local processes.

No cluster can run here, so the launch path (``K8sRunLauncher`` and ``k8s_job_executor``) is tested
against this: an HTTPS loopback server speaking the REST wire format the ``kubernetes`` Python
client sends and parses, with bearer-token auth. It implements (``{ns}`` a namespace):

- ``POST /apis/batch/v1/namespaces/{ns}/jobs``: the body is validated against the Kubernetes
  1.37 OpenAPI schema (``kubernetes-validate``; 422 ``Invalid`` otherwise), defaulted and
  labelled as the API server does (uid, selector, ``job-name`` and ``controller-uid`` labels)
- ``GET /apis/batch/v1/namespaces/{ns}/jobs`` (``labelSelector``, ``fieldSelector`` on
  ``metadata.name``), ``GET .../jobs/{name}`` and ``.../jobs/{name}/status``
- ``DELETE .../jobs/{name}``: batch/v1's default propagation orphans the Job's pods (which is why
  dagster-k8s deletes them itself); ``propagationPolicy`` Background or Foreground deletes them
- ``GET /api/v1/namespaces/{ns}/pods`` (selectors as above), ``GET|DELETE .../pods/{name}`` and
  ``GET .../pods/{name}/log`` (the container's stdout and stderr)

A Job controller and kubelet stand-in runs each Job: its pod (``<job>-<5 chars>``) executes the
container's ``command`` (else the image's entrypoint) plus ``args`` as a local process, with the
image's environment under the pod's: ``envFrom`` config maps and secrets registered on the server,
then ``env`` (``value`` with ``$(VAR)`` expansion, ``secretKeyRef``, ``configMapKeyRef``,
``fieldRef`` to the pod's name or namespace) and ``HOSTNAME``. A missing secret or config map
leaves the pod Pending with ``CreateContainerConfigError``, an unknown image with ``ErrImagePull``,
as a kubelet would. The Job's status follows batch/v1: ``active``/``ready`` while the pod runs,
then ``succeeded`` with the ``SuccessCriteriaMet`` and ``Complete`` conditions, or ``failed``,
retried up to ``backoffLimit``, then ``FailureTarget`` and ``Failed``. Deleting a pod sends
SIGTERM to its process group, then SIGKILL after the pod's grace period.

What it does not prove: scheduling (node selectors, tolerations, resource requests and GPUs are
recorded, never honoured), that the image exists or holds this code (processes run from the
repository), volumes and mounts (the processes share this machine's filesystem), RBAC, service
accounts, network reachability from a pod, ``activeDeadlineSeconds``, TTL clean-up, events,
watches, and any API semantics beyond the calls listed above.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import kubernetes_validate

from tests.contract_http import JsonHandler, Routes, self_signed, serving

KUBERNETES_VERSION = "1.37.0"
JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
DEFAULT_BACKOFF_LIMIT = 6
DEFAULT_GRACE_SECONDS = 30
EXPANSION = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass(frozen=True)
class Image:
    """What a container image would bring: its environment, working directory and entrypoint."""

    env: Mapping[str, str]
    working_dir: Path
    entrypoint: Sequence[str] = ()


class ApiError(Exception):
    """An error answered as the API server answers it: a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, undefined references stay
    as written, ``$$`` is a literal ``$``."""
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return EXPANSION.sub(replace, text)


def matches(selector: str, labels: Mapping[str, str]) -> bool:
    """An equality-based label selector (``a=b,c!=d,e``); set-based selectors are not served."""
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif " " in term or "(" in term:
            raise ApiError(400, "BadRequest", f"contract server: unsupported label selector {term!r}")
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def name_selected(selector: str, obj: dict) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if key not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest", f'"{key}" is not a known field selector: only "metadata.name", '
                                              f'"metadata.namespace"')
        if obj["metadata"][key.split(".")[1]] != value.lstrip("="):
            return False
    return True


@dataclass
class Pod:
    manifest: dict
    job_uid: str
    log: Path
    process: subprocess.Popen | None = None
    watcher: threading.Thread | None = None
    deleted: bool = False


@dataclass
class Store:
    """The cluster's objects, keyed by (namespace, name)."""

    namespaces: set[str]
    jobs: dict[tuple[str, str], dict] = field(default_factory=dict)
    pods: dict[tuple[str, str], Pod] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


class KubeApiServer:
    """The server on a free loopback port; use as a context manager.

    ``images`` maps image names to what they would run. ``add_secret`` / ``add_config_map`` register
    what ``envFrom`` and ``valueFrom`` resolve; ``kubeconfig(path)`` writes a kubeconfig for the
    server. ``created_jobs`` holds every Job as received (camelCase, as on the wire), ``requests``
    every (method, path); ``logs()`` every pod's output, for failure messages.
    """

    def __init__(self, images: Mapping[str, Image], namespaces: Sequence[str] = ("default",)):
        self.images = dict(images)
        self.token = secrets.token_hex(16)
        self.url = ""
        self.created_jobs: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self._store = Store(set(namespaces))
        self._lock = threading.RLock()
        self._stack = ExitStack()

    def __enter__(self) -> Self:
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="kube-api-")))
        self._logs, self.certificate = folder / "logs", self_signed(folder)
        self._logs.mkdir()
        self._stack.callback(self._kill_all)
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.url = self._stack.enter_context(serving(handler, self.certificate))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    # Test hooks

    def add_secret(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        with self._lock:
            self._store.secrets[namespace, name] = dict(data)

    def add_config_map(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        with self._lock:
            self._store.config_maps[namespace, name] = dict(data)

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig whose current context is this server, trusting its certificate."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "contract",
            "clusters": [{"name": "contract", "cluster": {"server": self.url,
                                                          "certificate-authority": str(self.certificate)}}],
            "users": [{"name": "contract", "user": {"token": self.token}}],
            "contexts": [{"name": "contract", "context": {"cluster": "contract", "user": "contract",
                                                          "namespace": namespace}}],
        }
        path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        return path

    def process(self, namespace: str, pod: str) -> subprocess.Popen | None:
        """The local process running a pod's container (None before it starts)."""
        with self._lock:
            return self._store.pods[namespace, pod].process

    def logs(self) -> str:
        with self._lock:
            pods = list(self._store.pods.values())
        return "\n".join(f"--- pod {pod.manifest['metadata']['name']} ({pod.manifest['status']['phase']})\n"
                         f"{pod.log.read_text(errors='replace') if pod.log.exists() else ''}" for pod in pods)

    # API

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               raw: bytes | None) -> tuple[int, Any]:
        with self._lock:
            self.requests.append((method, path))
            try:
                if headers.get("Authorization") != f"Bearer {self.token}":
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                route = ROUTES.match(method, path)
                if route is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                name, arguments = route
                if arguments["ns"] not in self._store.namespaces:
                    raise ApiError(404, "NotFound", f'namespaces "{arguments["ns"]}" not found')
                params = {key: values[0] for key, values in query.items()}
                body = json.loads(raw) if raw else {}
                return getattr(self, name)(body, params, **arguments)
            except ApiError as error:
                return error.code, error.body()

    def create_job(self, body: dict, params: dict, ns: str) -> tuple[int, Any]:
        self.created_jobs.append(json.loads(json.dumps(body)))
        try:
            kubernetes_validate.validate(body, KUBERNETES_VERSION)
        except kubernetes_validate.ValidationError as error:
            raise ApiError(422, "Invalid", f"Job.batch is invalid: {str(error).splitlines()[0]}") from None
        name = body.get("metadata", {}).get("name") or ""
        if (ns, name) in self._store.jobs:
            raise ApiError(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
        uid = str(uuid.uuid4())
        job = json.loads(json.dumps(body))
        metadata = job["metadata"]
        metadata.update(namespace=ns, uid=uid, creationTimestamp=now(), resourceVersion="1", generation=1)
        controller = {**dict.fromkeys(UID_LABELS, uid), **dict.fromkeys(JOB_NAME_LABELS, name)}
        metadata["labels"] = {**controller, **metadata.get("labels", {})}
        spec = job["spec"]
        spec.setdefault("backoffLimit", DEFAULT_BACKOFF_LIMIT)
        spec.update(completions=spec.get("completions", 1), parallelism=spec.get("parallelism", 1),
                    completionMode="NonIndexed", suspend=False,
                    selector={"matchLabels": {UID_LABELS[1]: uid}})
        template = spec["template"]
        template.setdefault("metadata", {})["labels"] = {**template["metadata"].get("labels", {}), **controller}
        job["status"] = {"startTime": now(), "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}
        self._store.jobs[ns, name] = job
        self._start_pod(job)
        return 201, job

    def list_jobs(self, body: dict, params: dict, ns: str) -> tuple[int, Any]:
        items = [job for (namespace, _), job in self._store.jobs.items() if namespace == ns
                 and matches(params.get("labelSelector", ""), job["metadata"]["labels"])
                 and name_selected(params.get("fieldSelector", ""), job)]
        return 200, {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {"resourceVersion": "1"}, "items": items}

    def read_job(self, body: dict, params: dict, ns: str, name: str) -> tuple[int, Any]:
        return 200, self._job(ns, name)

    def delete_job(self, body: dict, params: dict, ns: str, name: str) -> tuple[int, Any]:
        job = self._job(ns, name)
        del self._store.jobs[ns, name]
        policy = body.get("propagationPolicy") or params.get("propagationPolicy") or "Orphan"
        if policy != "Orphan":
            for pod in self._pods_of(job):
                self._delete_pod(pod, body, params)
        job["metadata"]["deletionTimestamp"] = now()
        return 200, job

    def list_pods(self, body: dict, params: dict, ns: str) -> tuple[int, Any]:
        items = [pod.manifest for (namespace, _), pod in self._store.pods.items() if namespace == ns
                 and matches(params.get("labelSelector", ""), pod.manifest["metadata"]["labels"])
                 and name_selected(params.get("fieldSelector", ""), pod.manifest)]
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}

    def read_pod(self, body: dict, params: dict, ns: str, name: str) -> tuple[int, Any]:
        return 200, self._pod(ns, name).manifest

    def delete_pod(self, body: dict, params: dict, ns: str, name: str) -> tuple[int, Any]:
        pod = self._pod(ns, name)
        self._delete_pod(pod, body, params)
        return 200, pod.manifest

    def read_pod_log(self, body: dict, params: dict, ns: str, name: str) -> tuple[int, Any]:
        pod = self._pod(ns, name)
        if pod.process is None:
            waiting = pod.manifest["status"]["containerStatuses"][0]["state"]["waiting"]
            raise ApiError(400, "BadRequest", f'container "{waiting["name"]}" in pod "{name}" is waiting to '
                                              f'start: {waiting["reason"]}')
        text = pod.log.read_text(errors="replace")
        if params.get("tailLines"):
            text = "".join(text.splitlines(keepends=True)[-int(params["tailLines"]):])
        return 200, text

    # The Job controller and kubelet

    def _job(self, ns: str, name: str) -> dict:
        if (ns, name) not in self._store.jobs:
            raise ApiError(404, "NotFound", f'jobs.batch "{name}" not found')
        return self._store.jobs[ns, name]

    def _pod(self, ns: str, name: str) -> Pod:
        if (ns, name) not in self._store.pods:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        return self._store.pods[ns, name]

    def _owner(self, pod: Pod) -> dict | None:
        return next((job for job in self._store.jobs.values() if job["metadata"]["uid"] == pod.job_uid), None)

    def _pods_of(self, job: dict) -> list[Pod]:
        return [pod for pod in self._store.pods.values() if pod.job_uid == job["metadata"]["uid"]]

    def _start_pod(self, job: dict) -> None:
        ns, template = job["metadata"]["namespace"], job["spec"]["template"]
        name = f"{job['metadata']['name']}-{''.join(secrets.choice('bcdfghjklmnpqrstvwxz2456789') for _ in range(5))}"
        container = template["spec"]["containers"][0]
        manifest = {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {**template["metadata"], "name": name, "generateName": f"{job['metadata']['name']}-",
                         "namespace": ns, "uid": str(uuid.uuid4()), "creationTimestamp": now(),
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "controller": True,
                                              "name": job["metadata"]["name"], "uid": job["metadata"]["uid"]}]},
            "spec": {**template["spec"], "nodeName": "contract-node"},
            "status": {"phase": "Pending", "startTime": now(), "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                       "qosClass": "Burstable"},
        }
        pod = Pod(manifest, job["metadata"]["uid"], self._logs / f"{ns}_{name}.log")
        self._store.pods[ns, name] = pod
        try:
            image = self.images.get(container.get("image", ""))
            if image is None:
                raise ContainerError("ErrImagePull", f'failed to pull image "{container.get("image")}": not found')
            env = self._environment(manifest, container, image)
        except ContainerError as error:
            manifest["status"]["containerStatuses"] = [self._container_status(container, {"waiting": {
                "reason": error.reason, "message": error.message}})]
            self._refresh(job)
            return
        argv = [expand(part, env) for part in [*(container.get("command") or image.entrypoint),
                                                *(container.get("args") or [])]]
        with pod.log.open("wb") as log:
            pod.process = subprocess.Popen(argv, env=env, cwd=container.get("workingDir") or image.working_dir,
                                           stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
        manifest["status"].update(phase="Running", conditions=[
            {"type": kind, "status": "True", "lastTransitionTime": now()}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")])
        manifest["status"]["containerStatuses"] = [self._container_status(
            container, {"running": {"startedAt": now()}}, ready=True)]
        self._refresh(job)
        pod.watcher = threading.Thread(target=self._watch, args=(pod,), daemon=True)
        pod.watcher.start()

    @staticmethod
    def _container_status(container: dict, state: dict, ready: bool = False) -> dict:
        return {"name": container["name"], "image": container.get("image", ""), "imageID": "", "ready": ready,
                "started": ready, "restartCount": 0, "state": state}

    def _environment(self, manifest: dict, container: dict, image: Image) -> dict[str, str]:
        """The container's environment as the kubelet builds it."""
        ns = manifest["metadata"]["namespace"]
        env = {**image.env, "HOSTNAME": manifest["metadata"]["name"]}
        for source in container.get("envFrom") or []:
            kind, ref = ("Secret", source["secretRef"]) if "secretRef" in source else ("ConfigMap", source["configMapRef"])
            data = self._lookup(kind, ns, ref["name"], ref.get("optional", False))
            env.update({source.get("prefix", "") + key: value for key, value in (data or {}).items()})
        fields = {"metadata.name": manifest["metadata"]["name"], "metadata.namespace": ns,
                  "metadata.uid": manifest["metadata"]["uid"]}
        for variable in container.get("env") or []:
            source = variable.get("valueFrom")
            if source is None:
                env[variable["name"]] = expand(variable.get("value") or "", env)
            elif "fieldRef" in source and source["fieldRef"]["fieldPath"] in fields:
                env[variable["name"]] = fields[source["fieldRef"]["fieldPath"]]
            elif "secretKeyRef" in source or "configMapKeyRef" in source:
                kind, ref = (("Secret", source["secretKeyRef"]) if "secretKeyRef" in source
                             else ("ConfigMap", source["configMapKeyRef"]))
                data = self._lookup(kind, ns, ref["name"], ref.get("optional", False))
                if data is not None and ref["key"] not in data and not ref.get("optional", False):
                    raise ContainerError("CreateContainerConfigError",
                                         f"couldn't find key {ref['key']} in {kind} {ns}/{ref['name']}")
                if data is not None and ref["key"] in data:
                    env[variable["name"]] = data[ref["key"]]
            else:
                raise ContainerError("CreateContainerConfigError",
                                     f"contract server: unsupported valueFrom {json.dumps(source)}")
        return env

    def _lookup(self, kind: str, ns: str, name: str, optional: bool) -> dict[str, str] | None:
        registry = self._store.secrets if kind == "Secret" else self._store.config_maps
        if (ns, name) not in registry and not optional:
            raise ContainerError("CreateContainerConfigError", f'{kind.lower()} "{name}" not found')
        return registry.get((ns, name))

    def _watch(self, pod: Pod) -> None:
        code = pod.process.wait()
        with self._lock:
            ns, name = pod.manifest["metadata"]["namespace"], pod.manifest["metadata"]["name"]
            status = pod.manifest["status"]
            running = status["containerStatuses"][0]["state"]["running"]
            status["phase"] = "Succeeded" if code == 0 else "Failed"
            status["conditions"] = [{**condition, "status": "False"} if condition["type"] in ("Ready", "ContainersReady")
                                    else condition for condition in status["conditions"]]
            status["containerStatuses"][0].update(ready=False, started=False, state={"terminated": {
                "exitCode": code if code >= 0 else 128 - code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": running["startedAt"], "finishedAt": now()}})
            if pod.deleted:
                self._store.pods.pop((ns, name), None)
            job = self._owner(pod)
            if job is not None:
                self._finish(job, succeeded=code == 0 and not pod.deleted)

    def _finish(self, job: dict, succeeded: bool) -> None:
        """The Job controller's reaction to one of its pods terminating."""
        status = job["status"]
        outcome = "succeeded" if succeeded else "failed"
        status[outcome] = status.get(outcome, 0) + 1
        if succeeded:
            status["completionTime"] = now()
            status["conditions"] = [self._condition("SuccessCriteriaMet", "CompletionsReached",
                                                    "Reached expected number of succeeded pods"),
                                    self._condition("Complete", "CompletionsReached",
                                                    "Reached expected number of succeeded pods")]
        elif status["failed"] > job["spec"]["backoffLimit"]:
            message = "Job has reached the specified backoff limit"
            status["conditions"] = [self._condition("FailureTarget", "BackoffLimitExceeded", message),
                                    self._condition("Failed", "BackoffLimitExceeded", message)]
        else:
            self._start_pod(job)
        self._refresh(job)

    def _refresh(self, job: dict) -> None:
        """``active`` (omitted when zero, as on the wire) and ``ready`` from the Job's pods."""
        phases = [pod.manifest["status"]["phase"] for pod in self._pods_of(job)]
        active = sum(phase in ("Pending", "Running") for phase in phases)
        job["status"].pop("active", None)
        job["status"].update({"active": active} if active else {}, ready=phases.count("Running"))

    @staticmethod
    def _condition(kind: str, reason: str, message: str) -> dict:
        return {"type": kind, "status": "True", "reason": reason, "message": message,
                "lastProbeTime": now(), "lastTransitionTime": now()}

    def _delete_pod(self, pod: Pod, body: dict, params: dict) -> None:
        """Graceful deletion: SIGTERM now, SIGKILL after the grace period; the object goes once the
        process has exited (at once for a pod that never started)."""
        metadata = pod.manifest["metadata"]
        grace = body.get("gracePeriodSeconds", params.get("gracePeriodSeconds",
                                                          pod.manifest["spec"].get("terminationGracePeriodSeconds",
                                                                                   DEFAULT_GRACE_SECONDS)))
        metadata.update(deletionTimestamp=now(), deletionGracePeriodSeconds=int(grace))
        if pod.process is None or pod.process.poll() is not None:
            self._store.pods.pop((metadata["namespace"], metadata["name"]), None)
            job = self._owner(pod)
            if pod.process is None and job is not None:
                self._finish(job, succeeded=False)
            return
        pod.deleted = True
        _signal(pod.process, signal.SIGTERM)
        timer = threading.Timer(int(grace), _signal, args=(pod.process, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def _kill_all(self) -> None:
        with self._lock:
            pods = list(self._store.pods.values())
        for pod in pods:
            if pod.process is not None:
                _signal(pod.process, signal.SIGKILL)
                pod.process.wait()
                pod.watcher.join()


class ContainerError(Exception):
    """Why a kubelet could not start a container: a waiting reason and message."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def _signal(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass


ROUTES = Routes([
    ("POST", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs", "create_job"),
    ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs", "list_jobs"),
    ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)(/status)?", "read_job"),
    ("DELETE", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "delete_job"),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods", "list_pods"),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)", "read_pod"),
    ("DELETE", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)", "delete_pod"),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log", "read_pod_log"),
])


class _Handler(JsonHandler):
    server_state: KubeApiServer

    def _answer(self) -> None:
        path, query, raw = self.read_request()
        self.send_payload(*self.server_state.handle(self.command, path, query, self.headers, raw))

    do_GET = do_POST = do_DELETE = _answer
