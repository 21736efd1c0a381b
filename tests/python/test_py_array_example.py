# SPDX-License-Identifier: MIT
"""examples/python/producer_consumer.py runs and prints what it promises."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, '..', '..', 'examples', 'python', 'producer_consumer.py')


def test_producer_consumer_example():
    out = subprocess.run([sys.executable, EXAMPLE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    n = 1_000_000
    producer = [ln for ln in lines if ln.startswith('producer: ')]
    consumer = [ln for ln in lines if ln.startswith('consumer: ')]
    assert producer == [f'producer: round {r}: wrote {n} int32' for r in (1, 2, 3)]
    assert consumer == ['consumer: opened the array by name: int32 shape (1000000,)'] + [
        f'consumer: round {r}: sum {r * n * (n - 1) // 2} (expected {r * n * (n - 1) // 2}) ok'
        for r in (1, 2, 3)]
    # each round is consumed after it was produced
    for r in (1, 2, 3):
        assert lines.index(f'producer: round {r}: wrote {n} int32') < \
            [i for i, ln in enumerate(lines) if ln.startswith(f'consumer: round {r}:')][0]
    assert lines[-1] == 'producer and consumer agree on 3 rounds of 1000000 int32'
