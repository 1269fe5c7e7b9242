"""What fixed shards would cost, in one process with one BLAS thread: a training step on
the whole batch vs the same batch cut into shards of SHARD rows, each forward and
backward in turn (gradients added), as every process would compute a fixed shard.

    python benchmarks/shards.py [SHARD] [models ...]      (default 16; the models of compare.py)

Alternating rounds; minimum and median of 7 rounds of 10 steps.
"""
import sys, time, statistics
import numpy as np
from threadpoolctl import threadpool_limits
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import handgrad
from handgrad import optim
from compare import BENCHMARKS
threadpool_limits(1, user_api="blas")
SHARD = int(sys.argv[1]) if len(sys.argv) > 1 else 16
names = sys.argv[2:] or ["mlp", "lenet5", "small_cnn", "cnn", "char_lstm"]
for name in names:
    b = BENCHMARKS[name]
    x, y = b.make_batch(np.random.default_rng(0), b.batch_size)
    handgrad.manual_seed(0)
    m = b.build_handgrad(); crit = b.build_loss(); opt = optim.SGD(m.parameters(), lr=b.lr, momentum=0.9)
    def whole(steps):
        t = time.perf_counter()
        for _ in range(steps):
            crit(m(x), y); opt.zero_grad(); m.backward(crit.backward()); opt.step()
        return time.perf_counter() - t
    def sharded(steps):
        t = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            for a in range(0, len(x), SHARD):
                crit(m(x[a:a + SHARD]), y[a:a + SHARD]); m.backward(crit.backward())
            opt.step()
        return time.perf_counter() - t
    whole(5); sharded(5)
    w, s = [], []
    for _ in range(7):
        w.append(whole(10) / 10); s.append(sharded(10) / 10)
    print(f"{name:10s} batch {b.batch_size:4d}: whole {min(w)*1e3:7.2f} ms (median {statistics.median(w)*1e3:7.2f})  "
          f"shards of {SHARD}: {min(s)*1e3:7.2f} ms (median {statistics.median(s)*1e3:7.2f})  "
          f"cost {min(s)/min(w)-1:+.1%} (min) {statistics.median(s)/statistics.median(w)-1:+.1%} (median)", flush=True)
