"""`spark-submit jobs/stats.py --config CONF.yaml [key=value ...]`: what `corpus stats` runs (jobs/stages/stats.py)."""

import sys

from corpus.jobs.run import submit_main

if __name__ == "__main__":
    sys.exit(submit_main("stats"))
