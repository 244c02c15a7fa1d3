"""The pure core: the vocabulary and the decision, standard library only.

Nothing here touches a file, a process or the clock on its own; every
module imports only the standard library and other ``selfheal.core``
modules. The edges (``selfheal.edges``) and everything above build on it.
"""
