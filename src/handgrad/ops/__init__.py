"""Pure kernels: ``f_forward(x, params..., cfg) -> (out, cache)`` and
``f_backward(dout, cache) -> (dx, dparams...)``. No state, no validation."""
from .activations import (
    leaky_relu_backward, leaky_relu_forward, log_softmax_backward, log_softmax_forward,
    relu_backward, relu_forward, sigmoid_backward, sigmoid_forward, softmax_backward,
    softmax_forward, tanh_backward, tanh_forward,
)
from .augment import shift_flip_backward, shift_flip_forward
from .dropout import dropout_backward, dropout_forward
from .linear import linear_backward, linear_forward
from .losses import (
    mse_backward, mse_forward, softmax_cross_entropy_backward, softmax_cross_entropy_forward,
)
from .attention import (
    attention_rnn_all_backward, attention_rnn_all_backward_naive, attention_rnn_all_forward,
    attention_rnn_all_forward_naive, attention_rnn_all_step_backward, attention_rnn_all_step_forward,
    attention_rnn_backward, attention_rnn_backward_naive, attention_rnn_forward,
    attention_rnn_forward_naive, attention_rnn_step_backward, attention_rnn_step_forward,
)
from .gated import (
    gated_rnn_backward, gated_rnn_backward_naive, gated_rnn_forward, gated_rnn_forward_naive,
    gated_rnn_step_backward, gated_rnn_step_forward,
)
from .gru import (
    gru_backward, gru_backward_naive, gru_forward, gru_forward_naive, gru_step_backward, gru_step_forward,
)
from .lstm import (
    lstm_backward, lstm_backward_naive, lstm_embedding_backward, lstm_embedding_forward, lstm_forward,
    lstm_forward_naive, lstm_step_backward, lstm_step_forward,
)
from .rnn import (
    rnn_backward, rnn_backward_naive, rnn_forward, rnn_forward_naive, rnn_step_backward, rnn_step_forward,
)
from .embedding import embedding_backward, embedding_forward
from .conv import conv1d_backward, conv1d_forward, conv2d_backward, conv2d_forward
from .dropout import dropout2d_forward
from .norm import batch_norm_backward, batch_norm_forward
from .pool import (
    avg_pool2d_backward, avg_pool2d_forward, max_pool1d_backward, max_pool1d_forward,
    max_pool2d_backward, max_pool2d_forward,
)
