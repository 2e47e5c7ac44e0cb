"""Experience replay (chapter 9, DQN): a ring of the last `capacity`
transitions (s, a, r, s', terminated), sampled uniformly at random so that a
minibatch is not a run of correlated consecutive steps."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

import numpy as np


class Batch(NamedTuple):
    """A minibatch of transitions, numpy arrays (copies). From `sample`:
    obs (B, *obs_shape), actions (B,) int64, rewards (B,) float32,
    next_obs (B, *obs_shape), terminated (B,) bool, mask None. From
    `sample_sequences`: each with a window axis, (B, L, ...), and mask (B, L)."""
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    mask: Optional[np.ndarray] = None


class ReplayBuffer:
    """The last `capacity` transitions, in preallocated arrays.

    Observations are stored once: `obs_dtype` is kept (uint8 frames stay
    uint8), and a transition's next observation is not stored again when it
    is the observation of the transition added after it (the usual case inside
    an episode). Only the last next observation of each episode (when it was
    terminated or truncated, or the next `add` starts elsewhere) is kept
    apart, so the memory is about capacity × one observation, not two.

    An episode ends after a transition that was `terminated` or `truncated`,
    or whose next observation is not the next transition's observation;
    `sample_sequences` masks the steps of a window after such an end.
    Sampling uses a numpy Generator seeded with `seed`.
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int], *,
                 obs_dtype: Any = np.float32, seed: Optional[int] = None) -> None:
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        self._obs = np.zeros((self.capacity,) + self.obs_shape, self.obs_dtype)
        self._actions = np.zeros(self.capacity, np.int64)
        self._rewards = np.zeros(self.capacity, np.float32)
        self._terminated = np.zeros(self.capacity, bool)
        self._ends = np.zeros(self.capacity, bool)          # an episode ends after this slot
        self._own_next: dict[int, np.ndarray] = {}          # slot -> next obs, at episode ends
        self._pending: Optional[np.ndarray] = None          # the newest transition's next obs
        self._head = 0                                      # the slot written next
        self._size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (f"ReplayBuffer({self._size}/{self.capacity} transitions, obs {self.obs_shape} "
                f"{self.obs_dtype}, {self.nbytes / 2**20:.1f} MiB)")

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored transitions' arrays."""
        arrays = [self._obs, self._actions, self._rewards, self._terminated, self._ends]
        return (sum(a.nbytes for a in arrays) + sum(a.nbytes for a in self._own_next.values())
                + (self._pending.nbytes if self._pending is not None else 0))

    def _check(self, x: Any, name: str) -> np.ndarray:
        x = np.asarray(x)
        if x.shape != self.obs_shape:
            raise ValueError(f"ReplayBuffer.add: {name} of shape {x.shape} but the buffer holds "
                             f"observations of shape {self.obs_shape}")
        if not np.can_cast(x.dtype, self.obs_dtype, casting="same_kind"):
            raise TypeError(f"ReplayBuffer.add: {name} of dtype {x.dtype} cannot be stored as "
                            f"{self.obs_dtype} without losing its values (obs_dtype="
                            f"{self.obs_dtype}); convert it first or make the buffer with "
                            f"obs_dtype={x.dtype}")
        return x.astype(self.obs_dtype, copy=False)   # compared with the stored next obs

    def add(self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool,
            truncated: bool = False) -> None:
        """Store one transition (copies), overwriting the oldest when full.
        `truncated` (a time limit) ends the episode without `terminated`."""
        obs, next_obs = self._check(obs, "obs"), self._check(next_obs, "next_obs")
        if np.ndim(action) != 0 or np.ndim(reward) != 0:
            raise ValueError(f"ReplayBuffer.add: action and reward must be scalars, got shapes "
                             f"{np.shape(action)} and {np.shape(reward)}")
        i = self._head
        if self._size and self._pending is not None:
            prev = (i - 1) % self.capacity
            if self._ends[prev] or not np.array_equal(obs, self._pending):
                self._ends[prev] = True                     # the next obs is not slot i's
                self._own_next[prev] = self._pending
        self._own_next.pop(i, None)                          # slot i's old transition goes
        self._obs[i] = obs
        self._actions[i] = action
        self._rewards[i] = reward
        self._terminated[i] = terminated
        self._ends[i] = bool(terminated) or bool(truncated)
        self._pending = next_obs.copy()
        self._head = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def _next_obs(self, slots: np.ndarray) -> np.ndarray:
        out = self._obs[(slots + 1) % self.capacity]
        newest = (self._head - 1) % self.capacity
        for k in np.flatnonzero(self._ends[slots] | (slots == newest)):   # few rows
            s = int(slots[k])
            out[k] = self._pending if s == newest else self._own_next[s]
        return out

    def _gather(self, slots: np.ndarray, mask: Optional[np.ndarray] = None) -> Batch:
        nxt = self._next_obs(slots.ravel()).reshape(slots.shape + self.obs_shape)
        return Batch(self._obs[slots], self._actions[slots], self._rewards[slots], nxt,
                     self._terminated[slots], mask)

    def sample(self, batch_size: int) -> Batch:
        """`batch_size` distinct transitions drawn uniformly."""
        if batch_size > self._size:
            raise ValueError(f"ReplayBuffer.sample: asked for {batch_size} transitions but the "
                             f"buffer holds {self._size}")
        slots = self.rng.choice(self._size, size=batch_size, replace=False)
        return self._gather(slots)

    def sample_sequences(self, batch_size: int, length: int) -> Batch:
        """`batch_size` windows of `length` consecutive transitions (in the
        order they were added), for recurrent Q-networks. A window starts at a
        uniformly drawn transition, mid-episode too (start the network from a
        zero state, with a burn-in if needed); `mask[b, t]` is False for the
        steps after an episode ended (terminated or truncated) inside window
        b, True up to and including the step that ends it."""
        if length < 1:
            raise ValueError(f"ReplayBuffer.sample_sequences: length must be >= 1, got {length}")
        if length > self._size:
            raise ValueError(f"ReplayBuffer.sample_sequences: asked for windows of {length} "
                             f"transitions but the buffer holds {self._size}")
        oldest = self._head if self._size == self.capacity else 0
        starts = self.rng.integers(0, self._size - length + 1, size=batch_size)
        slots = (oldest + starts[:, None] + np.arange(length)) % self.capacity
        ended = np.cumsum(self._ends[slots], axis=1)
        mask = np.ones(slots.shape, bool)
        mask[:, 1:] = ended[:, :-1] == 0
        return self._gather(slots, mask)
