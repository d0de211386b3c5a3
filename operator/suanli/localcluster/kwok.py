"""kwok configuration: which lifecycle stages fake nodes and their pods go through.

The standalone kwok binary has no default stages, so we ship them. Node and generic pod stages
follow kwok's own "fast" stages (sigs.k8s.io/kwok kustomize/stage, Apache-2.0). Two stages are
suanli's own: a pod that carries ``suanli.io/fake-duration`` finishes that long after it started
running, Succeeded — or Failed with the exit code in ``suanli.io/fake-exit-code`` when present.
Pods without the annotation run until deleted, like a long training job.
"""

from __future__ import annotations

from suanli.constants import FAKE_DURATION_ANNOTATION, FAKE_EXIT_CODE_ANNOTATION

_STAGES = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type  | Quote}}
      {{ end }}
      addresses:
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ end }}
      {{ $nodeInfo := .status.nodeInfo }}
      {{ $kwokVersion := printf "kwok-%s" Version }}
      nodeInfo:
        architecture: {{ or $nodeInfo.architecture "amd64" }}
        containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
        kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
        kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
        operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) \
        ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    delete: true
"""

# A pod with a fake duration ends that long after it started running: Succeeded, or Failed
# with the exit code from its annotation. Both stages differ only in these fields.
_FINISH_STAGE = """\
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: suanli-pod-@OUTCOME@
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["@DURATION@"]'
      operator: 'Exists'
    - key: '.metadata.annotations["@EXIT_CODE@"]'
      operator: '@EXIT_CODE_GIVEN@'
  delay:
    durationMilliseconds: 1000
    durationFrom:
      expressionFrom: '.metadata.annotations["@DURATION@"]'
  next:
    statusTemplate: |
      {{ $now := Now }}
@CODE_LINE@      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: @READY_REASON@
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: @CODE@
            finishedAt: {{ $now | Quote }}
            reason: @TERMINATED_REASON@
      {{ end }}
      phase: @PHASE@
"""


def _finish_stage(succeed: bool) -> str:
    fields = (
        {"OUTCOME": "succeed", "EXIT_CODE_GIVEN": "DoesNotExist", "CODE_LINE": "",
         "READY_REASON": "PodCompleted", "CODE": "0", "TERMINATED_REASON": "Completed",
         "PHASE": "Succeeded"}
        if succeed
        else {"OUTCOME": "fail", "EXIT_CODE_GIVEN": "Exists",
              "CODE_LINE": '      {{ $code := index .metadata.annotations "@EXIT_CODE@" }}\n',
              "READY_REASON": "PodFailed", "CODE": "{{ $code }}", "TERMINATED_REASON": "Error",
              "PHASE": "Failed"}
    )  # fmt: skip
    text = _FINISH_STAGE
    for key, value in fields.items():
        text = text.replace(f"@{key}@", value)
    return text


KWOK_CONFIGURATION = (
    (_STAGES + _finish_stage(succeed=True) + _finish_stage(succeed=False))
    .replace("@DURATION@", FAKE_DURATION_ANNOTATION)
    .replace("@EXIT_CODE@", FAKE_EXIT_CODE_ANNOTATION)
)
