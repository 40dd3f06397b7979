"""The SDK behind ``import shipyard``: one facade over a local or a remote backend."""
