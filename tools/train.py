"""See mmdrconv/cli/train.py (`python tools/train.py -h`)."""
from mmdrconv.cli.train import main

if __name__ == '__main__':
    main()
