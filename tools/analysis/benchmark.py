"""See mmdrconv/cli/benchmark.py (`python tools/analysis/benchmark.py -h`)."""
from mmdrconv.cli.benchmark import main

if __name__ == '__main__':
    main()
