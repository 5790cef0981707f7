"""See mmdrconv/analysis/profile.py (`python tools/analysis/benchmark.py -h`).
"""
from mmdrconv.analysis.profile import main

if __name__ == '__main__':
    main()
