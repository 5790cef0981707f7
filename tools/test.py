"""See mmdrconv/cli/test.py (`python tools/test.py -h`)."""
from mmdrconv.cli.test import main

if __name__ == '__main__':
    main()
