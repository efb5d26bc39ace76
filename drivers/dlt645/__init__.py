"""DL/T 645-2007 electricity meters on RS-485: frame codec, data identifiers, stream parser.

The IO-free layers live here now (`protocol`, `identifiers`); the driver class and the
meter simulator land with the IO side of issue 4.
"""
