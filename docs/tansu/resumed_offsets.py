"""Where a new group member resumes a dead member's partitions, without anomaly's code.

A member (librdkafka through confluent-kafka, in its own process) reads the 10 messages of each
of 3 partitions, commits offset 5 on each (it processed 5), and is SIGKILLed. Once its session has
expired, a new member joins the group. On Kafka the new member's first message on each partition
is at offset 5, the committed one: the 5 messages the dead member never committed are delivered
again. This prints where the new member's first message on each partition was, and what the
group has committed.

    pip install confluent-kafka
    tansu broker --listener-url tcp://127.0.0.1:29092 \\
        --advertised-listener-url tcp://127.0.0.1:29092 --storage-engine sqlite://tansu.db &
    python3 docs/tansu/resumed_offsets.py 127.0.0.1:29092
"""

import signal
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
MESSAGES = 10
COMMITTED = 5


def consumer(brokers, group):
    return Consumer({
        "bootstrap.servers": brokers,
        "group.id": group,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })


def first_member(brokers, topic, group, share):
    """Reads what it is given (everything, or its share once `share` members hold the topic),
    commits offset COMMITTED on each partition it read, then waits to be killed."""
    member = consumer(brokers, group)
    held = []
    member.subscribe([topic], on_assign=lambda c, ps: held.__setitem__(slice(None), [p.partition for p in ps]))
    seen = set()
    while not held or len({p for p, _ in seen}) < len(held) or len(seen) < len(held) * MESSAGES:
        message = member.poll(1.0)
        if message is not None and message.error() is None:
            seen.add((message.partition(), message.offset()))
        if share > 1 and len(held) == PARTITIONS:
            seen.clear()  # alone so far: wait for the others' share
    mine = sorted({p for p, _ in seen})
    member.commit(
        offsets=[TopicPartition(topic, p, COMMITTED) for p in mine],
        asynchronous=False,
    )
    print(f"{time.strftime('%T')} a member read {len(seen)} messages of partitions {mine}, committed {COMMITTED} on each", flush=True)
    while True:
        member.poll(0.5)


def main():
    brokers = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:29092"
    if len(sys.argv) > 4:
        first_member(brokers, sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    topic, group = f"resume-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": brokers})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    producer = Producer({"bootstrap.servers": brokers})
    for p in range(PARTITIONS):
        for n in range(MESSAGES):
            producer.produce(topic, value=f"{p}-{n}".encode(), partition=p)
    producer.flush()

    first = subprocess.Popen([sys.executable, __file__, brokers, topic, group, "1"], stdout=subprocess.PIPE, text=True)
    print(first.stdout.readline(), end="", flush=True)
    print(f"{time.strftime('%T')} SIGKILL the first member", flush=True)
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(8)  # the dead member's session (6 s) expires

    resume(brokers, topic, group, "the new member")
    rejoin(brokers, producer, admin)


def rejoin(brokers, producer, admin):
    """anomaly's case: two members share the topic, one is SIGKILLed; the survivor keeps only its
    own partitions (tansu's stranded ones, see stranded_partitions.py), so it leaves the group
    and joins again, as a predictor does. Where does it resume the dead member's partitions?"""
    topic, group = f"rejoin-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    for p in range(PARTITIONS):
        for n in range(MESSAGES):
            producer.produce(topic, value=f"{p}-{n}".encode(), partition=p)
    producer.flush()
    survivor = consumer(brokers, group)
    survivor.subscribe([topic])
    victim = subprocess.Popen([sys.executable, __file__, brokers, topic, group, "2"], stdout=subprocess.PIPE, text=True)
    # The survivor polls (and so takes part in the rebalance) until the victim has committed.
    import selectors
    watch = selectors.DefaultSelector()
    watch.register(victim.stdout, selectors.EVENT_READ)
    while not watch.select(timeout=0):
        survivor.poll(0.2)
    print(victim.stdout.readline(), end="", flush=True)
    print(f"{time.strftime('%T')} SIGKILL that member; the survivor holds {sorted(p.partition for p in survivor.assignment())}", flush=True)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    until = time.time() + 10
    while time.time() < until:  # the dead member's session (6 s) expires
        survivor.poll(0.2)
    print(f"{time.strftime('%T')} after the session: the survivor holds {sorted(p.partition for p in survivor.assignment())}; it leaves and joins again", flush=True)
    survivor.close()
    resume(brokers, topic, group, "the rejoined survivor")


def resume(brokers, topic, group, who):
    """Joins the group and prints its first offset on each partition beside the committed ones
    (where Kafka resumes)."""
    member = consumer(brokers, group)
    member.subscribe([topic])
    firsts = {}
    deadline = time.time() + 30
    while len(firsts) < PARTITIONS and time.time() < deadline:
        message = member.poll(1.0)
        if message is not None and message.error() is None:
            firsts.setdefault(message.partition(), message.offset())
    committed = member.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    print(f"{time.strftime('%T')} {who}'s first offset per partition: {dict(sorted(firsts.items()))}", flush=True)
    print(f"{time.strftime('%T')} committed for the group: {[(c.partition, c.offset) for c in committed]}", flush=True)
    member.close()


if __name__ == "__main__":
    main()
