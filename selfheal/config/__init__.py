"""The config file: loading with FILE:LINE errors, trust, and the cache.

Kept empty on purpose: ``selfheal run`` on a healthy check imports only
``selfheal.config.cache``, never the YAML loader.
"""
