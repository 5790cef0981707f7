"""See mmdrconv/cli/suite.py (`python tools/suite.py -h`)."""
from mmdrconv.cli.suite import main

if __name__ == '__main__':
    main()
