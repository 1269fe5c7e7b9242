"""Layers with the PyTorch-like object API: each owns Parameters and calls one kernel."""
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .augment import RandomShiftFlip
from .dropout import Dropout, Dropout2d
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Parameter, Sequential, Stateful, is_grad_enabled, no_grad, set_grad_enabled
from .embedding import Embedding
from .recurrent import GRU, LSTM, RNN, AttentionRNN, GatedRNN
from .temporal_loss import TemporalCrossEntropyLoss
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv1d, Conv2d
from .pool import AvgPool2d, MaxPool1d, MaxPool2d
