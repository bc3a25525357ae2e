"""Kubernetes: a Deployment per process type (plus a Service for the types that listen), the
env files as a ConfigMap and, for the values that look secret, a Secret (mode 0600)."""

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
    port_readiness=True,
)

Object = dict[str, Any]


def render(model: ExportModel) -> tuple[ExportFile, ...]:
    plain, secret = model.split_env()
    files = []
    if plain:
        files.append(ExportFile(f"{model.app}.configmap.yaml", yaml_text(
            _object(model, "v1", "ConfigMap", f"{model.app}-env", data=plain))))
    if secret:
        files.append(ExportFile(f"{model.app}.secret.yaml", yaml_text(
            _object(model, "v1", "Secret", f"{model.app}-secret", type="Opaque",
                    stringData=secret)), private=True))
    sources: list[Object] = []
    if plain:
        sources.append({"configMapRef": {"name": f"{model.app}-env"}})
    if secret:
        sources.append({"secretRef": {"name": f"{model.app}-secret"}})
    for kind in model.types:
        documents = [_deployment(model, kind, sources)]
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
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": name, "labels": _labels(model)}, **body}


def _selector(model: ExportModel, kind: ExportType) -> dict[str, str]:
    return {"app.kubernetes.io/name": model.app, "app.kubernetes.io/component": kind.label}


def _deployment(model: ExportModel, kind: ExportType, sources: list[Object]) -> Object:
    env = model.instance_env(str(kind.port), SCRATCH)
    container: Object = {
        "name": kind.label,
        "image": model.image,
        "command": ["/bin/sh", "-c", kind.command],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
    }
    if sources:
        container["envFrom"] = sources
    if kind.listens:
        container["ports"] = [{"containerPort": kind.port, "protocol": "TCP"}]
        container["readinessProbe"] = {"tcpSocket": {"port": kind.port}, "periodSeconds": 1}
    if kind.tty:
        container.update(tty=True, stdin=True)
    deployment = _object(model, "apps/v1", "Deployment", f"{model.app}-{kind.label}")
    deployment["metadata"]["labels"] = _labels(model, kind)
    deployment["spec"] = {
        "replicas": kind.replicas,
        "selector": {"matchLabels": _selector(model, kind)},
        "template": {
            "metadata": {"labels": _labels(model, kind)},
            "spec": {
                "restartPolicy": PLATFORM.restart[kind.policy],
                "terminationGracePeriodSeconds": math.ceil(kind.stop_timeout),
                "containers": [container],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
            },
        },
    }
    return deployment


def _service(model: ExportModel, kind: ExportType) -> Object:
    service = _object(model, "v1", "Service", f"{model.app}-{kind.label}")
    service["metadata"]["labels"] = _labels(model, kind)
    service["spec"] = {
        "selector": _selector(model, kind),
        "ports": [{"port": kind.port, "targetPort": kind.port, "protocol": "TCP"}],
    }
    return service
