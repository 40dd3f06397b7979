"""The ``shipyard`` command line: a thin Typer + Rich layer over the public SDK.

One module per command group; ``main`` holds the root app. Nothing here is imported by the
SDK, the services or the server.
"""
