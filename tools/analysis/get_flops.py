"""See mmdrconv/cli/get_flops.py (`python tools/analysis/get_flops.py -h`)."""
from mmdrconv.cli.get_flops import main

if __name__ == '__main__':
    main()
