"""gymnasium wrappers (this module imports gymnasium; `rl` imports it lazily)."""
from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

#: CartPole's observation: cart position, cart velocity, pole angle, pole angular velocity.
CARTPOLE_KEPT = (0, 2)


class HideVelocity(gymnasium.ObservationWrapper):
    """CartPole without its two velocities: the observation is (cart
    position x, pole angle θ), so a single observation does not tell which way
    the pole is falling (the partially observed pole-cart). A policy must
    remember: compare two consecutive observations, or use a recurrent network.
    """

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gymnasium.spaces.Box) or space.shape != (4,):
            raise ValueError(f"HideVelocity: expects CartPole's Box observation of shape (4,) "
                             f"(x, ẋ, θ, θ̇), got {space}")
        keep = list(CARTPOLE_KEPT)
        self.observation_space = gymnasium.spaces.Box(space.low[keep], space.high[keep],
                                                      dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[list(CARTPOLE_KEPT)]
