"""Run another benchmark script as it would run on a CPU with AVX2 but no VNNI, AVX-512 or bf16.

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/as_avx2.py benchmarks/int8_settings.py --runs 40
    ONEDNN_MAX_CPU_ISA=AVX2 HYDRANET_ENGINE_CACHE=0 python benchmarks/as_avx2.py \\
        benchmarks/default_engine_accuracy.py

For developers on a newer CPU. ``ONEDNN_MAX_CPU_ISA=AVX2`` (read by OpenVINO's oneDNN when it
loads, hence set outside) limits OpenVINO's kernels to AVX2; their INT8 convolutions then sum
u8 x s8 products in saturating 16-bit pairs (VPMADDUBSW) as an AVX2-only CPU does, which a
1x1 convolution at the top of its ranges shows (42 % off without NNCF's overflow fix). This
wrapper also makes hydranet see the CPU flags of such a CPU (so it picks its settings for CPUs
without VNNI) and asks OpenVINO for f32 where nothing else is asked, since OpenVINO would
otherwise pick bf16 from the real CPU's flags and fail to build it. The engine cache sees the
same flags, so what it keeps here is never read by an ordinary run.

Timings are this CPU's AVX2 code, not an AVX2 CPU's: compare within one run. Accuracy is the
AVX2 arithmetic: on the bundled model the settings of 2026-12-04 gave 65.78 mIoU and real-frame
abs rel 0.2462 / 0.2257 here, against 65.79 and 0.2451 / 0.2262 on a real Zen 3.
"""

from __future__ import annotations

import os
import runpy
import sys

AVX2_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma"})


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() != "AVX2":
        print("as_avx2.py: set ONEDNN_MAX_CPU_ISA=AVX2 in the environment (OpenVINO reads it when it "
              "loads), e.g. ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/as_avx2.py SCRIPT", file=sys.stderr)
        return 2
    import openvino as ov

    import hydranet.export.cache as cache
    import hydranet.export.cpu as cpu

    cpu.cpu_flags = cache.cpu_flags = lambda: AVX2_FLAGS
    compile_model = ov.Core.compile_model

    def compile_f32(self, model, device_name=None, config=None, **kwargs):
        config = dict(config or {})
        config.setdefault("INFERENCE_PRECISION_HINT", "f32")
        return compile_model(self, model, device_name, config, **kwargs)

    ov.Core.compile_model = compile_f32
    script, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
