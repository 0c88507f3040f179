"""intsim: a bit-exact integer-arithmetic simulator for low-precision training (HDQT)."""
__version__ = "0.1.0"
