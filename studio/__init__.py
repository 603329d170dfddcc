"""AnomalyControl Studio: controllable, labelled defect synthesis for quality engineering."""

__version__ = "0.1.0"
