"""Helpers behind the ``megenginelite`` command line (``megenginelite.cli``): model summaries and ONNX export.

They sit on top of the format, graph and lower layers; nothing in the library imports them.
"""
