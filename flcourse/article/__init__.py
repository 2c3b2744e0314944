"""The article's two listings, condensed as chapters 04 and 05 show them, in importable modules.

- :mod:`~flcourse.article.listing_4_1`: ``Model``, ``Worker``, ``Server`` (section 4.1,
  distributed learning);
- :mod:`~flcourse.article.listing_4_2`: ``Model``, ``Client``, ``Server`` (section 4.2,
  federated learning: the same code under new names).

The code is the article's, defects included: the chapters run it, name its defects and fix them
elsewhere. It lives in modules rather than in notebook cells so that it runs under every start
method. A process started by spawn or forkserver (macOS, Windows, Linux from Python 3.14, and
Linux whenever the parent runs several threads, as a Jupyter kernel does) rebuilds its ``Worker``
by importing the module that defines the class, and a notebook cannot be imported (chapter 04,
defect 7). ``tests/test_article.py`` checks that each module holds the listing the chapter
prints.

Besides the listings, this package holds what the chapters add around them, none of it the
article's: :class:`PatientQueue`, the article's queue with a timeout, and a worker and a client
that exit before they reply.
"""
from __future__ import annotations

import multiprocessing as mp
import os

from . import listing_4_1, listing_4_2

__all__ = ["PatientQueue", "VanishingClient", "VanishingWorker", "listing_4_1", "listing_4_2"]


class PatientQueue:
    """The article's ``Queue``, except that :meth:`get` gives up after ``timeout`` seconds.

    The chapters' guard against defect 6: where the article's server would wait forever for a
    reply that never comes, ``get`` raises ``queue.Empty``.
    """

    def __init__(self, timeout: float):
        self.timeout, self._queue = timeout, mp.Queue()

    def put(self, item) -> None:
        self._queue.put(item)

    def get(self):
        return self._queue.get(timeout=self.timeout)


class VanishingWorker(listing_4_1.Worker):
    """A section-4.1 worker that exits before it replies, as a crash or a power cut would end it."""

    def run(self):
        os._exit(1)  # gone without a word (the same on Linux, macOS and Windows)


class VanishingClient(listing_4_2.Client):
    """A section-4.2 client that exits before it replies, as a phone whose battery dies."""

    def run(self):
        os._exit(1)
