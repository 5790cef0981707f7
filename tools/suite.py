"""See mmdrconv/suite/run.py: `python tools/suite.py configs/suites/demo.py`.
"""
from mmdrconv.suite.run import main

if __name__ == '__main__':
    main()
