"""Minimal repro of a tansu 0.6 group-coordinator deviation, without anomaly's code.

Two consumers (librdkafka through confluent-kafka) join one group on a 3-partition topic, each in
its own process. One is SIGKILLed. Kafka evicts it once its session (6 s here) expires and gives
its partitions to the survivor. tansu 0.6 does rebalance the survivor then, but hands it only the
partitions it already had: the dead member's stay assigned to nobody until another member joins.

    pip install confluent-kafka
    tansu broker --listener-url tcp://127.0.0.1:29092 \\
        --advertised-listener-url tcp://127.0.0.1:29092 --storage-engine sqlite://tansu.db &
    python3 docs/tansu/stranded_partitions.py 127.0.0.1:29092

Prints the survivor's assignments; on Kafka the last one is [0, 1, 2].
"""

import os
import signal
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic


def member(brokers, topic, group):
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": group,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
    })

    def assigned(c, partitions):
        print(f"{time.strftime('%T')} pid {os.getpid()} holds {sorted(p.partition for p in partitions)}", flush=True)

    consumer.subscribe([topic], on_assign=assigned)
    while True:
        consumer.poll(0.5)


def main():
    brokers = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:29092"
    if len(sys.argv) > 3:
        member(brokers, sys.argv[2], sys.argv[3])
        return
    topic, group = f"repro-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": brokers})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result()
    start = lambda: subprocess.Popen([sys.executable, __file__, brokers, topic, group])
    survivor = start()
    time.sleep(5)
    victim = start()
    time.sleep(10)
    print(f"{time.strftime('%T')} SIGKILL pid {victim.pid}", flush=True)
    victim.send_signal(signal.SIGKILL)
    time.sleep(30)
    survivor.terminate()


if __name__ == "__main__":
    main()
