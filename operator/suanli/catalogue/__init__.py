"""The default AcceleratorClass catalogue: the accelerator models a new centre most likely has.

Why Python data and not YAML: every figure sits next to the public source it came from, the
models validate the entries at import time, and ``make generate`` writes the YAML copies
(``deploy/catalogue/`` and the chart) from here, so they cannot drift.

Compute is dense (no structured sparsity) FP16/BF16 tensor throughput per device in TFLOPS: the
figure vendors publish for training and the one compute centres add up to state PFLOPS. Vendors
often headline the 2:4-sparsity figure; where they do, the dense figure (half of it) is used and
the comment says so. Figures a vendor does not publish plainly are marked "secondary source".
"""

from __future__ import annotations

from suanli.api import AcceleratorClass, AcceleratorClassSpec, ObjectMeta, Sharing, Topology

# Ascend device-plugin / hiascend node labels (MindCluster "node labels" reference): `accelerator`
# (huawei-Ascend910, huawei-Ascend310P...), `accelerator-type` (module, module-910b-8, card...),
# `node.kubernetes.io/npu.chip.name` (910A, 910B3, 310P3...). Collected in
# ../shared/reference/accelerators.md.
ASCEND_ACCELERATOR_LABEL = "accelerator"
ASCEND_TYPE_LABEL = "accelerator-type"
ASCEND_CHIP_LABEL = "node.kubernetes.io/npu.chip.name"
# NVIDIA GPU Feature Discovery (github.com/NVIDIA/k8s-device-plugin, docs/gpu-feature-discovery):
# `nvidia.com/gpu.product` is the nvidia-smi product name with spaces replaced by dashes.
NVIDIA_PRODUCT_LABEL = "nvidia.com/gpu.product"

# HGX baseboards join all 8 GPUs through NVSwitch, so any count from 1 to 8 is one hop apart
# (NVIDIA HGX A100 / H100 platform briefs); suanli still prefers packing small pods together.
_NVSWITCH_8 = Topology(group_size=8, allowed_device_counts=[1, 2, 3, 4, 5, 6, 7, 8])


def _entry(name: str, spec: AcceleratorClassSpec) -> AcceleratorClass:
    return AcceleratorClass(
        metadata=ObjectMeta(name=name, labels={"app.kubernetes.io/part-of": "suanli"}),
        spec=spec,
    )


DEFAULT_CATALOGUE: tuple[AcceleratorClass, ...] = (
    _entry(
        "ascend-910a",
        AcceleratorClassSpec(
            display_name="Huawei Ascend 910 (910A), Atlas 800 training server model 9000",
            vendor="huawei",
            # Ascend device plugin resource for whole 910 chips (MindCluster ascend-device-plugin).
            resource_name="huawei.com/Ascend910",
            # hiascend labels: Atlas 800 (model 9000) training servers are accelerator-type
            # "module" (8 chips); 910B servers use module-910b-8 / module-910b-16 instead.
            node_labels={
                ASCEND_ACCELERATOR_LABEL: "huawei-Ascend910",
                ASCEND_TYPE_LABEL: "module",
            },
            # Atlas 800 training server (model 9000): 8 Ascend 910 per server.
            devices_per_node=8,
            # Atlas 300T training card (model 9000) technical white paper: 32 GB HBM per 910.
            device_memory_gi_b=32,
            # Huawei press release "Huawei launches Ascend 910" (2019-08-23,
            # huawei.com/en/news/2019/8/huawei-ascend-910-most-powerful-ai-processor):
            # "256 TeraFLOPS" of half-precision (FP16). No sparsity involved.
            compute_tflops=256,
            # ascend-for-volcano internal/ascend910/module910x8 and the MindCluster affinity
            # guide: two HCCS rings of 4 chips (0-3, 4-7); a pod takes 1, 2 or 4 chips inside
            # one ring, or all 8; jobs with several pods take 8 per pod.
            topology=Topology(
                group_size=4, allowed_device_counts=[1, 2, 4, 8], multi_replica_device_count=8
            ),
        ),
    ),
    _entry(
        "ascend-910b",
        AcceleratorClassSpec(
            display_name="Huawei Ascend 910B (Atlas 800T A2, 8-NPU module)",
            vendor="huawei",
            # 910B nodes still register huawei.com/Ascend910 (volcano-sh/volcano#4446 shows a
            # module-910b-8 node advertising it).
            resource_name="huawei.com/Ascend910",
            node_labels={
                ASCEND_ACCELERATOR_LABEL: "huawei-Ascend910",
                ASCEND_TYPE_LABEL: "module-910b-8",
            },
            # ascend-for-volcano internal/ascend910/ascend910b/module910bx8/type.go:
            # nodeNPUNumber = 8.
            devices_per_node=8,
            # Atlas 800T A2 data sheet: 64 GB HBM2e per NPU (secondary sources agree).
            device_memory_gi_b=64,
            # Huawei publishes no per-chip FP16 figure for the 910B family; 313 TFLOPS FP16 is
            # the figure widely reported for 910B3 (secondary source; 910B1/B2 are higher).
            compute_tflops=313,
            # ascend-for-volcano internal/ascend910/ascend910b/base.go, CheckJobAllowNum:
            # "A+X 16P: 1,2,4,8,16; A+K 1,2,4,8" per pod; module910bx8's JudgeNodeAndTaskNPU
            # only checks the count fits the node's free NPUs (no half-ring rule, unlike 910A),
            # and checkJobTrainMode applies the same counts to distributed jobs, so no
            # multi-replica count is imposed.
            topology=Topology(group_size=8, allowed_device_counts=[1, 2, 4, 8]),
        ),
    ),
    _entry(
        "ascend-310p",
        AcceleratorClassSpec(
            display_name="Huawei Ascend 310P (Atlas 300I Pro inference card)",
            vendor="huawei",
            # Ascend device plugin resource for whole 310P chips.
            resource_name="huawei.com/Ascend310P",
            node_labels={ASCEND_ACCELERATOR_LABEL: "huawei-Ascend310P"},
            # Atlas 800 inference server (model 3000) takes up to 8 Atlas 300I cards
            # (MindCluster affinity guide); one 310P per Atlas 300I Pro card.
            devices_per_node=8,
            # Atlas 300I Pro product page (e.huawei.com): 24 GB LPDDR4X per card.
            device_memory_gi_b=24,
            # Atlas 300I Pro product page: 140 TOPS INT8 / 70 TFLOPS FP16 per card (one 310P).
            compute_tflops=70,
            # PCIe inference cards with no chip-to-chip fabric: any count up to the node.
            topology=Topology(group_size=1, allowed_device_counts=[1, 2, 3, 4, 5, 6, 7, 8]),
            # 310P supports static vNPU slices (huawei.com/Ascend310P-2c ...).
            sharing=Sharing(fractional=True),
        ),
    ),
    _entry(
        "nvidia-a100",
        AcceleratorClassSpec(
            display_name="NVIDIA A100 SXM4 80GB (HGX A100 8-GPU)",
            vendor="nvidia",
            resource_name="nvidia.com/gpu",
            node_labels={NVIDIA_PRODUCT_LABEL: "NVIDIA-A100-SXM4-80GB"},
            # HGX A100 8-GPU baseboard (NVIDIA HGX A100 platform page).
            devices_per_node=8,
            # NVIDIA A100 Tensor Core GPU data sheet: 80 GB HBM2e (SXM4 80GB).
            device_memory_gi_b=80,
            # A100 data sheet: BF16/FP16 Tensor Core 312 TFLOPS (624 with sparsity).
            compute_tflops=312,
            # NVSwitch on the HGX baseboard: all 8 GPUs one hop apart (see _NVSWITCH_8).
            topology=_NVSWITCH_8,
            # MIG: up to 7 instances per A100 (A100 data sheet).
            sharing=Sharing(fractional=True),
        ),
    ),
    _entry(
        "nvidia-h100",
        AcceleratorClassSpec(
            display_name="NVIDIA H100 SXM5 80GB (HGX H100 8-GPU)",
            vendor="nvidia",
            resource_name="nvidia.com/gpu",
            node_labels={NVIDIA_PRODUCT_LABEL: "NVIDIA-H100-80GB-HBM3"},
            # HGX H100 8-GPU baseboard (NVIDIA HGX H100 platform page).
            devices_per_node=8,
            # NVIDIA H100 Tensor Core GPU data sheet: H100 SXM 80 GB HBM3.
            device_memory_gi_b=80,
            # H100 data sheet, SXM column: BF16/FP16 Tensor Core 1,979 TFLOPS "with sparsity";
            # dense is half: 989.5, rounded down to 989.
            compute_tflops=989,
            # NVSwitch on the HGX baseboard: all 8 GPUs one hop apart (see _NVSWITCH_8).
            topology=_NVSWITCH_8,
            sharing=Sharing(fractional=True),
        ),
    ),
    _entry(
        "nvidia-h800",
        AcceleratorClassSpec(
            display_name="NVIDIA H800 SXM5 80GB (HGX H800 8-GPU)",
            vendor="nvidia",
            resource_name="nvidia.com/gpu",
            node_labels={NVIDIA_PRODUCT_LABEL: "NVIDIA-H800"},
            # HGX H800 8-GPU baseboard (same board design as HGX H100).
            devices_per_node=8,
            # H800 is the China-market H100 SXM with NVLink cut to 400 GB/s; memory (80 GB
            # HBM3) and tensor throughput are those of H100 SXM (NVIDIA H800 product brief;
            # secondary sources agree).
            device_memory_gi_b=80,
            # Same GH100 die and clocks as H100 SXM: 989 TFLOPS dense BF16/FP16 (H800 brief).
            compute_tflops=989,
            # HGX H800 8-GPU: NVSwitch full mesh as on HGX H100.
            topology=_NVSWITCH_8,
            sharing=Sharing(fractional=True),
        ),
    ),
    _entry(
        "nvidia-h20",
        AcceleratorClassSpec(
            display_name="NVIDIA H20 96GB (HGX H20 8-GPU)",
            vendor="nvidia",
            resource_name="nvidia.com/gpu",
            node_labels={NVIDIA_PRODUCT_LABEL: "NVIDIA-H20"},
            # HGX H20 8-GPU baseboard (H20 product brief: HGX form factor, 8 GPUs).
            devices_per_node=8,
            # NVIDIA H20 product brief (secondary sources quote it): 96 GB HBM3.
            device_memory_gi_b=96,
            # H20 product brief: FP16/BF16 Tensor Core 148 TFLOPS dense.
            compute_tflops=148,
            # NVSwitch on the HGX baseboard: all 8 GPUs one hop apart (see _NVSWITCH_8).
            topology=_NVSWITCH_8,
            sharing=Sharing(fractional=True),
        ),
    ),
    _entry(
        "nvidia-l40s",
        AcceleratorClassSpec(
            display_name="NVIDIA L40S 48GB (PCIe, 8 per server)",
            vendor="nvidia",
            resource_name="nvidia.com/gpu",
            node_labels={NVIDIA_PRODUCT_LABEL: "NVIDIA-L40S"},
            # NVIDIA OVX / L40S reference servers carry 8 PCIe cards (L40S product page).
            devices_per_node=8,
            # NVIDIA L40S data sheet: 48 GB GDDR6 with ECC.
            device_memory_gi_b=48,
            # L40S data sheet: BF16/FP16 Tensor Core 362.05 TFLOPS dense (733 with sparsity).
            compute_tflops=362.05,
            # No NVLink on L40S: GPUs talk over PCIe; a group of 4 is one CPU socket's PCIe
            # switch on common 2-socket 8-GPU servers (typical layout, not a vendor rule). suanli
            # policy: up to 4 inside one socket, or the whole server, never straddling halves.
            topology=Topology(group_size=4, allowed_device_counts=[1, 2, 3, 4, 8]),
            sharing=Sharing(fractional=True),
        ),
    ),
)


def by_name() -> dict[str, AcceleratorClass]:
    """The default catalogue keyed by AcceleratorClass name."""
    return {entry.metadata.name or "": entry for entry in DEFAULT_CATALOGUE}
