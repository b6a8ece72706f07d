"""The producer on the real stack: stopped as a service manager stops it (SIGTERM), it delivers what it
sent and stores the delayed labels of every transaction it streamed, each with the time it becomes known."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime, timedelta

from scorer_support import create_topics, delete_topics, read_topic, unique

from fraudops import fraud_db
from fraudops.labels import DEFAULT_DELAY
from fraudops.stack.services import venv_bin

# a simulated day no real stream reaches: its ids are the test's own
START = datetime(2031, 1, 1)


def test_sigterm_keeps_every_label_of_what_was_streamed(running_stack, tmp_path) -> None:
    settings = running_stack.settings
    dsn = fraud_db.fraud_dsn(settings, running_stack.secrets)
    prefix = f"{settings.simulator.seed}-{START:%Y%m%d}-"
    topic = unique("it-produce")
    create_topics(settings.kafka_bootstrap_servers, [topic])
    log = tmp_path / "producer.log"
    try:
        producer = subprocess.Popen(
            [venv_bin("fraudops"), "produce", "--rate", "200", "--clock", "wallclock"]
            + ["--start", START.strftime("%Y-%m-%d"), "--topic", topic, "--duration", "600"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=settings.project_root,
        )
        deadline = time.monotonic() + 120
        while "sent" not in log.read_text() and time.monotonic() < deadline:
            assert producer.poll() is None, log.read_text()
            time.sleep(0.5)
        time.sleep(3)  # a few hundred events, whose labels are all a week away
        producer.send_signal(signal.SIGTERM)
        assert producer.wait(60) == 130, log.read_text()

        events = read_topic(settings.kafka_bootstrap_servers, topic, timeout_s=30)
        assert len(events) >= 100
        sent = {e["transaction_id"]: datetime.fromisoformat(e["tx_datetime"]) for e in events}
        assert all(tx_id.startswith(prefix) for tx_id in sent)
        with fraud_db.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT transaction_id, available_at FROM fraud_labels WHERE transaction_id LIKE %s",
                (prefix + "%",),
            )
            labels = dict(cur.fetchall())
        assert set(labels) == set(sent), f"{len(set(sent) - set(labels))} streamed without a label"
        for tx_id, event_time in sent.items():
            assert abs(labels[tx_id] - (event_time.replace(tzinfo=None) + DEFAULT_DELAY)) < timedelta(
                milliseconds=1
            )
    finally:
        fraud_db.delete_transactions(dsn, prefix)
        delete_topics(settings.kafka_bootstrap_servers, [topic])
