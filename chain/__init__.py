"""Python <-> chain: compiler, local node, typed contract clients, keys and readers.

Nothing in this package imports ``miner``, ``validator`` or ``renter``.
"""
