"""Learning-rate schedules: functions of the epoch (0-based) returning that epoch's learning rate.

``make_schedule(name, base, epochs, step_size, gamma)`` returns the function; names are in
``SCHEDULES``. The rate is set once per epoch, which is what the study's runs did.
"""

import math


def constant(base, epochs, step_size, gamma):
    return lambda epoch: base


def step(base, epochs, step_size, gamma):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs."""
    return lambda epoch: base * gamma ** (epoch // step_size)


def cosine(base, epochs, step_size, gamma):
    """Half a cosine from ``base`` down to 0 over ``epochs`` epochs (Loshchilov & Hutter, 2017)."""
    return lambda epoch: 0.5 * base * (1 + math.cos(math.pi * min(epoch, epochs) / max(epochs, 1)))


SCHEDULES = {f.__name__: f for f in (constant, step, cosine)}


def make_schedule(name, base, epochs, step_size=10, gamma=0.1):
    return SCHEDULES[name](base, epochs, step_size, gamma)
