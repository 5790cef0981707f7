"""See mmdrconv/cli/generate_data.py (`python tools/generate_data.py -h`)."""
from mmdrconv.cli.generate_data import main

if __name__ == '__main__':
    main()
