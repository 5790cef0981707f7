"""Compile mmdrconv's Triton kernels for an H100 (sm_90), no GPU needed.

The interpreter checks what the kernels compute; this checks that the GPU
compiler accepts them, that their tiles fit in shared memory and that the
GEMMs run on tensor cores. Triton's CUDA backend compiles to a cubin with
its bundled ptxas and no driver. Run by tests/test_triton_kernels.py in a
process without TRITON_INTERPRET; prints one JSON object per kernel, or
exits with code 3 when this triton has no CUDA backend.
"""
import json
import os
import sys

os.environ.pop('TRITON_INTERPRET', None)

import triton  # noqa: E402

try:
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
except ImportError:  # pragma: no cover
    sys.exit(3)

from mmdrconv.core.ops.triton import region_conv, region_scale  # noqa: E402

TARGET = GPUTarget('cuda', 90, 32)
# Buffers the kernels accumulate in fp32 whatever the input dtype.
FP32_BUFFERS = {'dx_ptr', 'dw_ptr', 'resp_ptr', 'grad_scales_ptr',
                'grad_bias_ptr'}
INDEX_TYPES = {'order_ptr': '*i64', 'tile_key_ptr': '*i32',
               'tile_start_ptr': '*i64', 'tile_stop_ptr': '*i64'}


def signature(fn, dtype: str, constexprs: dict) -> dict:
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = 'constexpr'
        elif name in INDEX_TYPES:
            sig[name] = INDEX_TYPES[name]
        elif name.endswith('_ptr'):
            sig[name] = '*fp32' if name in FP32_BUFFERS else f'*{dtype}'
        else:
            sig[name] = 'i32'
    return sig


def alignment(fn, constexprs: dict) -> dict:
    """Pointers and specialised integers divisible by 16, as for a layer
    with 64..512 channels."""
    return {(i, ): [['tt.divisibility', 16]]
            for i, param in enumerate(fn.params)
            if param.name not in constexprs and not (
                param.do_not_specialize or
                param.do_not_specialize_on_alignment)}


def compile_kernel(kernel, dtype: str, flags: dict) -> dict:
    config = kernel.tuned.configs[0]
    constexprs = {**flags, **config.kwargs}
    fn = kernel.fn
    compiled = triton.compile(
        ASTSource(fn, signature(fn, dtype, constexprs), constexprs,
                  alignment(fn, constexprs)),
        target=TARGET,
        options=dict(num_warps=config.num_warps,
                     num_stages=config.num_stages))
    return dict(kernel=fn.__name__, dtype=dtype,
                shared=compiled.metadata.shared,
                tensor_cores='wgmma.mma_async' in compiled.asm['ptx'])


def main():
    gemm = dict(UPCAST=False, BLOCK_M=region_conv.TILE_ROWS)
    # bf16 for all; fp32 (TF32) for the forward: the fp32 backward kernels
    # differ from it only in the dtype of their loads.
    flags = dict(gemm, PRECISION='ieee')
    jobs = [(region_conv._forward, 'fp32',
             dict(gemm, PRECISION='tf32', HAS_BIAS=True)),
            (region_conv._forward, 'bf16', dict(flags, HAS_BIAS=True)),
            (region_conv._input_grad, 'bf16', dict(flags, ATOMIC=True)),
            (region_conv._filter_grad, 'bf16', flags),
            (region_conv._response, 'bf16', flags)]
    jobs += [(region_scale._scale_forward, 'bf16',
              dict(HAS_BIAS=True, BLOCK_R=16)),
             (region_scale._scale_backward, 'bf16',
              dict(NEED_OUT=True, NEED_SCALES=True, NEED_GUIDE=True,
                   NEED_BIAS=True, BLOCK_R=16))]
    for kernel, dtype, flags in jobs:
        print(json.dumps(compile_kernel(kernel, dtype, flags)), flush=True)


if __name__ == '__main__':
    main()
