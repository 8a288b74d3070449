"""`spark-submit jobs/dedup.py --config CONF.yaml [key=value ...]`: what `corpus dedup` runs (jobs/stages/dedup.py)."""

import sys

from corpus.jobs.run import submit_main

if __name__ == "__main__":
    sys.exit(submit_main("dedup"))
