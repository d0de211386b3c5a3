"""The device plugin's choice of chips: the operator's annotation wins, as in Ascend's plugin."""

from __future__ import annotations

from typing import Any

import pytest

from suanli.constants import BIND_SEQUENCE_ANNOTATION
from suanli.deviceplugin.chips import ASCEND_REAL_ANNOTATION, VENDORS, Allocation, choose

ASCEND = VENDORS["huawei"]
SEQ = BIND_SEQUENCE_ANNOTATION
NVIDIA = VENDORS["nvidia"]


def pod(name: str, chips: str | None, created: str, **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "t", "creationTimestamp": created}
    meta["annotations"] = {**annotations, **({"huawei.com/Ascend910": chips} if chips else {})}
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("requested", "pods", "expected"),
    [
        # the annotated chips replace kubelet's choice
        (["Ascend910-0", "Ascend910-1"], [pod("a", "Ascend910-4,Ascend910-6", "t1")],
         Allocation(("Ascend910-4", "Ascend910-6"), ("t", "a"))),
        # the oldest pod asking for that many chips is served first
        (["Ascend910-0"], [pod("new", "Ascend910-2", "t2"), pod("old", "Ascend910-7", "t1")],
         Allocation(("Ascend910-7",), ("t", "old"))),
        # created in the same second: the bind sequence, not the name, says which came first
        (["Ascend910-0"], [pod("job-0", "Ascend910-2", "t1", **{SEQ: "1700000000000000002"}),
                           pod("job-1", "Ascend910-5", "t1", **{SEQ: "1700000000000000001"})],
         Allocation(("Ascend910-5",), ("t", "job-1"))),
        # a sequence is compared as a number ("100" sorts before "99" as text)
        (["Ascend910-0"], [pod("a", "Ascend910-2", "t1", **{SEQ: "100"}),
                           pod("b", "Ascend910-5", "t1", **{SEQ: "99"})],
         Allocation(("Ascend910-5",), ("t", "b"))),
        # a garbled sequence counts as none: before any stamped pod of the same second
        (["Ascend910-0"], [pod("a", "Ascend910-2", "t1", **{SEQ: "99"}),
                           pod("b", "Ascend910-6", "t1", **{SEQ: "x1"})],
         Allocation(("Ascend910-6",), ("t", "b"))),
        # a pod already served (AscendReal) is skipped
        (["Ascend910-0"], [pod("done", "Ascend910-7", "t1", **{ASCEND_REAL_ANNOTATION: "x"}),
                           pod("next", "Ascend910-3", "t2")],
         Allocation(("Ascend910-3",), ("t", "next"))),
        # a count mismatch or unknown chip name is not a match: kubelet's choice stands
        (["Ascend910-0", "Ascend910-1"], [pod("a", "Ascend910-4", "t1"),
                                          pod("b", "Ascend910-4,GPU-1", "t1")],
         Allocation(("Ascend910-0", "Ascend910-1"), None)),
        # a pod without the annotation (not placed by the operator)
        (["Ascend910-5"], [pod("plain", None, "t1")], Allocation(("Ascend910-5",), None)),
    ],
)  # fmt: skip
def test_ascend_choice(
    requested: list[str], pods: list[dict[str, Any]], expected: Allocation
) -> None:
    assert choose(ASCEND, requested, pods) == expected


def test_nvidia_takes_kubelets_ids_and_ignores_annotations() -> None:
    chosen = choose(NVIDIA, ["nvidia-gpu-3"], [pod("a", "Ascend910-1", "t1")])
    assert chosen == Allocation(("nvidia-gpu-3",), None)
    assert chosen.envs(NVIDIA)["NVIDIA_VISIBLE_DEVICES"] == "3"


def test_envs_name_the_physical_indices() -> None:
    envs = Allocation(("Ascend910-4", "Ascend910-6"), None).envs(ASCEND)
    assert envs == {
        "ASCEND_VISIBLE_DEVICES": "4,6",
        "SUANLI_ALLOCATED_DEVICES": "Ascend910-4,Ascend910-6",
    }


def test_bad_device_id_names_the_expected_form() -> None:
    with pytest.raises(ValueError, match="Ascend910-<n>"):
        ASCEND.index("npu-1")
