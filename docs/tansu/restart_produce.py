"""Producing to tansu 0.6 (SQLite engine) after the broker was SIGKILLed and started again, without
anomaly's code.

A producer (librdkafka through confluent-kafka) writes 5 messages and each is acknowledged. The
broker is SIGKILLed; the producer sends one more message, which times out while the broker is
away. The broker is started again on the same files. Then producers write 5 more: the same
producer (which keeps its producer id; librdkafka's idempotent producer bumps its epoch
after a timed-out message, KIP-360), and a new one. On Kafka every message is acknowledged once the
broker is back. This prints, for each kind of producer (idempotent or not), what was
acknowledged after the restart and whether the broker still answers.

    pip install confluent-kafka
    python3 docs/tansu/restart_produce.py    # starts and kills its own tansu on a free port
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(directory, port):
    listener = f"tcp://127.0.0.1:{port}"
    log = open(os.path.join(directory, "tansu.log"), "ab")
    broker = subprocess.Popen(
        ["tansu", "broker", "--listener-url", listener, "--advertised-listener-url", listener,
         "--storage-engine", "sqlite://tansu.db"],
        cwd=directory, stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return broker
        except OSError:
            time.sleep(0.1)
    sys.exit("tansu did not start")


def produce(producer, topic, count, label):
    """Produces `count` messages; how many were acknowledged within 15 s."""
    acked = []
    for i in range(count):
        producer.produce(topic, key=b"k", value=f"{label}-{i}".encode(),
                         on_delivery=lambda err, msg: acked.append(err is None))
    producer.flush(15)
    return sum(acked)


def scenario(idempotent):
    directory = tempfile.mkdtemp()
    port = free_port()
    brokers = f"127.0.0.1:{port}"
    broker = start_broker(directory, port)
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": brokers})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result()
    config = {"bootstrap.servers": brokers, "enable.idempotence": idempotent,
              "message.timeout.ms": 3000}
    first = Producer(config)
    before = produce(first, topic, 5, "before")
    broker.send_signal(signal.SIGKILL)
    broker.wait()
    # A message sent while the broker is away times out (librdkafka then bumps an idempotent
    # producer's epoch, KIP-360, before it sends again).
    lost = produce(first, topic, 1, "while-away")
    broker = start_broker(directory, port)
    same = produce(first, topic, 5, "same-producer")
    fresh = produce(Producer(config), topic, 5, "new-producer")
    try:
        answers = topic in admin.list_topics(timeout=5).topics
    except Exception as err:  # the broker no longer answers metadata
        answers = f"no ({err})"
    broker.send_signal(signal.SIGKILL)
    broker.wait()
    with open(os.path.join(directory, "tansu.log"), errors="replace") as log:
        panics = [line.strip() for line in log if "panicked" in line or "more or less" in line]
    print(f"idempotent={idempotent}: before the kill 5/5 sent, {before} acknowledged; while the "
          f"broker was away 1 sent, {lost} acknowledged; after the "
          f"restart the same producer got {same}/5 acknowledged, a new producer {fresh}/5; "
          f"metadata answered: {answers}; broker panics: {panics or 'none'}", flush=True)


if __name__ == "__main__":
    for idempotent in (True, False):
        scenario(idempotent)
