"""The weight-free ``classic`` engine (see :mod:`studio.engines.classic.engine`)."""
from studio.engines.classic.engine import ClassicEngine, naive_candidate

__all__ = ["ClassicEngine", "naive_candidate"]
