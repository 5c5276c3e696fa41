"""Stand-ins for what cannot exist on a CPU-only machine: a GPU with its CUDA runtime, and TensorRT.

They are strict (they refuse what the real ones refuse, and what our design forbids) and their
API is checked against the real one (``test_trt_names.py``). They are for tests only.
"""
