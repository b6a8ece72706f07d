"""The streaming scorer: Kafka `transactions_stream` -> features -> champion -> predictions and Postgres.

Thin entry point: the logic lives in :mod:`fraudops.scoring`; `fraudops score` runs the same job.
Usage: `.venv/bin/python spark-jobs/score_transactions.py [--model-name NAME] [--topic T] ...`
"""

from fraudops.commands.stream import score_command

if __name__ == "__main__":
    score_command()
