"""A local OKX v5 simulator: REST and websockets on one port, for the demo, tests and trials.

``python -m simulator`` runs it; ``start_simulator(**opts)`` embeds it in a test;
``simulator.control.SimControl`` drives its ``/_sim/`` control API.
"""

from simulator.config import SimConfig
from simulator.server import SimulatorHandle, start_simulator

__all__ = ["SimConfig", "SimulatorHandle", "start_simulator"]
