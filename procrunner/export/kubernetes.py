"""Kubernetes: a Deployment per process type (plus a Service for the types that listen), a Job
for the release step and one-shots, the env files as a ConfigMap and, for the values that look
secret, a Secret: made by ``kubectl create secret generic --from-env-file`` from a file the
export only names the keys of, or written with its values (mode 0600) with
``--include-secrets``."""

from __future__ import annotations

import math
from typing import Any

from procrunner.config.restart_rules import Policy
from procrunner.export.files import ExportFile, yaml_text
from procrunner.export.model import ExportModel, ExportType, Platform

SCRATCH = "/scratch"
_ALWAYS_ONLY = "a Deployment always restarts (a one-shot step is a Job)"
PLATFORM = Platform(
    name="kubernetes",
    restart=dict.fromkeys(Policy, "Always"),
    approximated={
        Policy.STOP_ALL: "no equivalent, exported as Always",
        Policy.NEVER: _ALWAYS_ONLY,
        Policy.ON_FAILURE: _ALWAYS_ONLY,
    },
    chaos_tools="Chaos Mesh or LitmusChaos",
    stop_signal=False,
    depends_on=False,
    readiness=frozenset({"none", "uptime", "port", "http", "exec"}),
    health=frozenset({"http", "exec", "port"}),
    stop_command=True,
)

Object = dict[str, Any]


def secret_keys_file(model: ExportModel) -> str:
    return f"{model.app}.secret.env.example"


def secret_values_file(model: ExportModel) -> str:
    """Where the user puts the values: the export names it in .gitignore and never touches
    it."""
    return f"{model.app}.secret.env"


def create_secret_command(model: ExportModel) -> str:
    namespace = model.options.namespace
    return (f"kubectl create secret generic {model.app}-secret "
            f"--from-env-file={secret_values_file(model)}"
            + (f" --namespace {namespace}" if namespace else ""))


def render(model: ExportModel) -> tuple[ExportFile, ...]:
    plain, secret = model.split_env()
    files = []
    if plain:
        files.append(ExportFile(f"{model.app}.configmap.yaml", yaml_text(
            _object(model, "v1", "ConfigMap", f"{model.app}-env", data=plain))))
    if secret and model.options.include_secrets:
        files.append(ExportFile(f"{model.app}.secret.yaml", yaml_text(
            _object(model, "v1", "Secret", f"{model.app}-secret", type="Opaque",
                    stringData=secret)), private=True))
    elif secret:
        files.append(ExportFile(secret_keys_file(model), (
            f"# the keys of the Secret {model.app}-secret: copy to {secret_values_file(model)},\n"
            f"# fill in the values, then: {create_secret_command(model)}\n"
            + "".join(f"{key}=\n" for key in secret))))
    sources: list[Object] = []
    if plain:
        sources.append({"configMapRef": {"name": f"{model.app}-env"}})
    if secret:
        sources.append({"secretRef": {"name": f"{model.app}-secret"}})
    for kind in model.types:
        documents = [_job(model, kind, sources) if kind.once
                     else _deployment(model, kind, sources)]
        if kind.listens:
            documents.append(_service(model, kind))
        files.append(ExportFile(f"{kind.label}.yaml", yaml_text(*documents)))
    return tuple(files)


def _labels(model: ExportModel, kind: ExportType | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": model.app, "app.kubernetes.io/managed-by": "procrunner"}
    if kind is not None:
        labels["app.kubernetes.io/component"] = kind.label
    return labels


def _object(model: ExportModel, api: str, kind: str, name: str, **body: Any) -> Object:
    metadata: Object = {"name": name, "labels": _labels(model)}
    if model.options.namespace:
        metadata["namespace"] = model.options.namespace
    return {"apiVersion": api, "kind": kind, "metadata": metadata, **body}


def _selector(model: ExportModel, kind: ExportType) -> dict[str, str]:
    return {"app.kubernetes.io/name": model.app, "app.kubernetes.io/component": kind.label}


def _container(model: ExportModel, kind: ExportType, sources: list[Object]) -> Object:
    env = model.instance_env(str(kind.port), SCRATCH, container=True)
    container: Object = {
        "name": kind.label,
        "image": model.image,
        # a locally built image (kind, minikube) is used as it is; push a new tag to update
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", kind.command],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
    }
    if sources:
        container["envFrom"] = sources
    if kind.listens:
        container["ports"] = [{"containerPort": kind.port, "protocol": "TCP"}]
    readiness = kind.readiness
    if readiness.kind in ("port", "http", "exec") and not kind.once:
        container["readinessProbe"] = {**_probe(kind, readiness.kind, readiness.target),
                                       "periodSeconds": 1}
    if kind.health is not None and not kind.once:
        health = kind.health
        container["livenessProbe"] = {
            **_probe(kind, health.kind, health.target),
            "initialDelaySeconds": math.ceil(health.grace),
            "periodSeconds": max(1, math.ceil(health.every)),
            "timeoutSeconds": max(1, math.ceil(health.timeout)),
            "failureThreshold": health.failures,
        }
    if kind.stop_command:
        container["lifecycle"] = {"preStop": {"exec": {
            "command": ["/bin/sh", "-c", kind.stop_command]}}}
    if kind.tty:
        container.update(tty=True, stdin=True)
    return container


def _probe(kind: ExportType, check: str, target: str | None) -> Object:
    if check == "http":
        return {"httpGet": {"path": target or "/", "port": kind.port}}
    if check == "exec":
        return {"exec": {"command": ["/bin/sh", "-c", target or "true"]}}
    return {"tcpSocket": {"port": kind.port}}


def _pod(model: ExportModel, kind: ExportType, sources: list[Object], restart: str) -> Object:
    return {
        "metadata": {"labels": _labels(model, kind)},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": math.ceil(kind.stop_timeout),
            "containers": [_container(model, kind, sources)],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }


def _deployment(model: ExportModel, kind: ExportType, sources: list[Object]) -> Object:
    deployment = _object(model, "apps/v1", "Deployment", f"{model.app}-{kind.label}")
    deployment["metadata"]["labels"] = _labels(model, kind)
    deployment["spec"] = {
        "replicas": kind.replicas,
        "selector": {"matchLabels": _selector(model, kind)},
        "template": _pod(model, kind, sources, PLATFORM.restart[kind.policy]),
    }
    return deployment


def _job(model: ExportModel, kind: ExportType, sources: list[Object]) -> Object:
    """Runs to completion once; a failure is not retried (as procrunner: a failed release
    stops the deploy)."""
    job = _object(model, "batch/v1", "Job", f"{model.app}-{kind.label}")
    job["metadata"]["labels"] = _labels(model, kind)
    job["spec"] = {"backoffLimit": 0, "template": _pod(model, kind, sources, "Never")}
    return job


def _service(model: ExportModel, kind: ExportType) -> Object:
    service = _object(model, "v1", "Service", f"{model.app}-{kind.label}")
    service["metadata"]["labels"] = _labels(model, kind)
    service["spec"] = {
        "selector": _selector(model, kind),
        "ports": [{"port": kind.port, "targetPort": kind.port, "protocol": "TCP"}],
    }
    return service
