"""Stream simulated (or file) transactions into `transactions_stream`; the delayed labels go to Postgres.

Thin entry point over :mod:`fraudops.producer`; `fraudops produce` is the same command.
Usage: `.venv/bin/python kafka/produce_transactions.py --rate 200 --duration 60`
"""

from fraudops.commands.stream import produce_command

if __name__ == "__main__":
    produce_command()
