"""Neurons, layers and networks as modules whose ops land in the recorded graph.

The files read in the order of the book:

- `module`: the machinery: `Parameter`, `Module` (registration, scopes,
  buffers, `train`/`eval`, `state_dict`), the containers `ModuleList` and
  `Sequential`, and the parts of a module's diagram (`Module.diagram`);
- `init`: weight initialisers;
- `neurons` (chapter 1): activations, `Neuron`, `LinearPerceptron`;
- `dense` (chapters 1-3): `Layer`, PyTorch's `Linear`, `FeedForward`;
- `regularization` (chapter 2): `Dropout`;
- `conv` (chapter 5): `Conv2d`, `Conv1d`, `Flatten`;
- `embedding` (chapters 6-7): `Embedding`;
- `attention` (chapter 7): `AdditiveAttention`, `DotAttention`;
- `decoding` (chapter 7): `greedy_decode`, `beam_search`.
- `pooling` (chapter 5): `MaxPool2d`, `MaxPool1d`, `AvgPool2d`, `AvgPool1d`;
- `normalization` (chapter 5): `BatchNorm1d`, `BatchNorm2d`.
- `recurrent` (chapter 7): `RNNCell`, `LSTMCell`, `GRUCell`, `RNN`, `LSTM`, `GRU`, `record_steps`;
- `memory` (chapter 8): content and location addressing, the DNC's memory
  functions, `NTM`, `DNC`;
- `utils`: `clip_grad_norm_`, `clip_grad_value_`.

Modules are graph nodes in the following sense: calling a module pushes its
*scope name* with `tg.name_scope`, so every op it records carries the path
to it (see `Module` for the rule), and its structure (sizes, activations,
weights) stays readable for the renderer through `Module.diagram`.

Conventions follow PyTorch (`Module`, `Parameter`, `named_parameters`,
`state_dict`, `train`/`eval`, `Linear`) except the book's `Layer` weight
layout: (n_in, n_out), as in the book's TensorFlow code, so a batch of rows
x (batch, n_in) maps to x @ W + b (batch, n_out).
"""
from . import init
from .init import Init, Seed
from .module import (Activation, Box, Cell, DiagramPart, DType, FeatureMaps, Field,
                     IncompatibleKeys, MemoryNetwork, Module, ModuleList, Parameter, Regularizer,
                     Sequential, Stage, Units)
from .neurons import (ACTIVATIONS, STEP, Identity, LinearPerceptron, Neuron, ReLU, Sigmoid,
                      Softmax, Tanh, get_activation, identity, relu, sigmoid, softmax, tanh)
from .dense import FeedForward, Layer, Linear, NeuronView
from .regularization import Dropout
from .conv import Conv1d, Conv2d, Flatten
from .embedding import Embedding
from .decoding import Decoded, beam_search, greedy_decode, length_penalty
from .attention import AdditiveAttention, BahdanauAttention, LuongAttention, masked_softmax
from .pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from .normalization import BatchNorm1d, BatchNorm2d
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, record_steps
from .memory import (DNC, NTM, DNCState, NTMState, content_weights, dnc_allocation, dnc_link,
                     dnc_read_weights, dnc_usage, dnc_write, dnc_write_weights, ntm_address)
from . import utils

__all__ = [
    "Parameter", "Module", "ModuleList", "Sequential", "Neuron", "LinearPerceptron", "Layer",
    "Linear", "FeedForward", "Dropout", "Identity", "Sigmoid", "Tanh", "ReLU", "Softmax",
    "NeuronView", "identity", "sigmoid", "tanh", "relu", "softmax", "get_activation",
    "ACTIVATIONS", "init", "IncompatibleKeys", "Units", "Activation", "Regularizer", "Box",
    "FeatureMaps", "Cell", "Field", "Stage", "MemoryNetwork",
    "DiagramPart", "Conv1d", "Conv2d", "Flatten", "Embedding",
    "AdditiveAttention", "BahdanauAttention", "LuongAttention", "masked_softmax",
    "Decoded", "beam_search", "greedy_decode", "length_penalty",
    "MaxPool2d", "MaxPool1d", "AvgPool2d", "AvgPool1d", "BatchNorm1d", "BatchNorm2d",
    "RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU", "record_steps", "utils",
    "content_weights", "ntm_address", "dnc_usage", "dnc_allocation", "dnc_write_weights",
    "dnc_write", "dnc_link", "dnc_read_weights", "NTMState", "DNCState", "NTM", "DNC",
]
