"""See mmdrconv/cli/export_onnx.py
(`python tools/deployment/export_onnx.py -h`)."""
from mmdrconv.cli.export_onnx import main

if __name__ == '__main__':
    main()
