"""Data parallelism over processes: each training batch split between ``workers``
copies of the model, one per core.

Why processes. A NumPy library uses one core for most of a training step: BLAS
spreads only large matrix products over threads, and Python threads cannot
share the element-wise work because of the GIL (measured here: two threads
running the two halves of a LeNet-5 batch were only 1.3x as fast as one).
Processes have no GIL; each runs with a one-threaded BLAS.

The split. With ``workers = k`` a batch X of N rows is cut into k consecutive
slices X_1, ..., X_k of n_j rows; forked worker processes compute the first
k - 1 and the caller the last. Apart from the layers of :mod:`.shard` (see
below) rows do not interact, so

    out = f(X; W) = [f(X_1; W); ...; f(X_k; W)]       (the slices' outputs, stacked in order)

and the caller computes the loss L(out, y) of the whole batch itself, as with
one process. Back-propagation starts from G = dL/dout, whose rows split the same
way, G = [G_1; ...; G_k], and since W enters every row,

    dL/dW = sum_j J_j(W)^T G_j          J_j = d f(X_j; W)/dW

is the sum over processes of their own rows' contributions: each process runs
``backward(G_j)`` through its copy and the caller ADDS the workers' gradients
into its ``p.grad``. This equals one pass over the whole batch, up to the order
of floating-point additions, for any loss and any reduction.

What travels. Arrays go through shared memory (:mod:`.shared`: anonymous
mappings made before the fork, so that nothing is ever created in /dev/shm):
the weights (the caller copies its parameters into one block at every forward
pass; the workers' parameters are views of it), each worker's gradients (one
block per worker: its parameters' p.grad, into which its layers add), and each worker's
inputs X_j (its inbox) and outputs then output gradients G_j (its io box).
Through the pipes go only short messages (:mod:`.worker`): the jobs, the
shapes, the carried states, the training mode and NumPy's error settings, and
an array that does not fit its box.

A stateful model (``carries_state``, an :class:`~handgrad.nn.Stateful` such
as ``CharLSTM(stateful=True)`` for truncated BPTT) keeps the whole carried
state in the caller's copy: a tuple of arrays with the rows of the batch on
axis 1. Each process is given its rows of ``get_state()`` before the forward
pass, and the caller ends with the whole batch's final state, rows in order,
through ``set_state``; checkpoints, resets and evaluation see the same state as
with one process.

Process lifetime. The workers are forked at the first forward pass of a batch
with at least ``workers`` rows (after the caller has computed its own rows:
their outputs size the boxes) and stop at :meth:`DataParallel.close` (or the
end of its ``with`` block). A worker never outlives its caller: right after the
fork it asks Linux to SIGKILL it when the caller dies by any means
(:mod:`.lifetime`), and it also leaves when its pipe closes or its parent pid
changes. Since all shared memory is anonymous, it is freed with the last
process using it: a SIGKILLed caller leaves nothing behind. A worker that fails
raises :class:`ParallelError` in the caller with the worker's traceback; one
that dies raises it with its exit code; either way the others are stopped.

Random layers and batch norm (:mod:`.shard`). A layer that draws random
numbers gets, in every process, the seed the caller drew for it (one draw per
layer and batch, as one process makes) and takes its rows of the whole batch's
masks or shifts; batch norm adds up the processes' per-channel sums through
``allreduce`` (partial sums to the caller, the total back, in the middle of the
pass), so its statistics are the whole batch's; the running statistics are the
caller's, copied to the workers before every forward pass like the weights. So
every zoo model trains as on one process, to rounding. :func:`check_parallel`
refuses what it cannot split: a layer that draws or needs batch statistics
without a ``shard`` attribute, and a carried state below the model itself.
Needs ``os.fork``
(Linux, macOS) and threadpoolctl.

BLAS threads (:mod:`.threads`). A model that trains in one process (an MLP)
leaves its products to BLAS's threads, except that training steps of small
products run on one thread (:class:`StepThreads`, which the Trainer holds
while it trains and lifts while it evaluates).
"""
from .check import auto_workers, check_parallel, resolve_workers, usable_cores
from .threads import StepThreads, steps_on_one_thread
from .worker import ParallelError
from .wrapper import DataParallel

__all__ = ["DataParallel", "ParallelError", "StepThreads", "auto_workers", "check_parallel", "resolve_workers",
           "steps_on_one_thread", "usable_cores"]
