"""The model registry: model versions, their packaging (``flavors``) and input signatures."""
