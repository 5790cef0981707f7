"""See mmdrconv/cli/visualize_regions.py
(`python tools/analysis/visualize_regions.py -h`)."""
from mmdrconv.cli.visualize_regions import main

if __name__ == '__main__':
    main()
