"""The runtime: OS processes that answer requests before a deadline, for workers and clients alike.

See notebook 04.
"""
from .pool import (MAX_REPLY_BYTES, PRELOAD, START_METHOD_VARIABLE, STARTUP_TIMEOUT, ProcessPool,
                   child_socket, default_start_method, get_context, limit_blas_threads, serve)
from .wire import HEADER, WireError, decode, encode, encoded_size

__all__ = ["HEADER", "MAX_REPLY_BYTES", "PRELOAD", "START_METHOD_VARIABLE", "STARTUP_TIMEOUT",
           "ProcessPool", "WireError", "child_socket", "decode", "default_start_method", "encode",
           "encoded_size", "get_context", "limit_blas_threads", "serve"]
