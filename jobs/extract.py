"""`spark-submit jobs/extract.py --config CONF.yaml [key=value ...]`: what `corpus extract` runs (stages/extract.py)."""

import sys

from corpus.jobs.run import submit_main

if __name__ == "__main__":
    sys.exit(submit_main("extract"))
