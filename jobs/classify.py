"""`spark-submit jobs/classify.py --config CONF.yaml [key=value ...]`: what `corpus classify` runs
(jobs/stages/classify.py)."""

import sys

from corpus.jobs.run import submit_main

if __name__ == "__main__":
    sys.exit(submit_main("classify"))
