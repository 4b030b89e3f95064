"""A local stand-in for the Lightspeed Retail (X-Series) API 2.0, for the demo, tests and benchmark.

Run it with `python -m simulator --help`. Standard library only.
"""

from simulator.data import SCALES, SimData
from simulator.server import Simulator

__all__ = ["SCALES", "SimData", "Simulator"]
