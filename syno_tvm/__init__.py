"""syno-tvm: synthesize neural-network operators from dimension primitives and deploy them with Apache TVM."""

from .errors import SynoError

__version__ = "0.1.0"
__all__ = ["SynoError", "__version__"]
