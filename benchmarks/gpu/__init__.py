"""The one prepared run on a lent GPU machine (run.sh) and the figures speed.py does not give (measure.py)."""
