"""See mmdrconv/cli/benchmark_onnx.py
(`python tools/deployment/benchmark_onnx.py -h`)."""
from mmdrconv.cli.benchmark_onnx import main

if __name__ == '__main__':
    main()
