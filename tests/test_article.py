"""The article's listings in flcourse.article: the code the chapters print, and it runs the way
the chapters say under every start method (its classes are importable)."""
import inspect
import json
import multiprocessing as mp
import queue
import threading
from pathlib import Path

import numpy as np
import pytest

from flcourse import article
from flcourse.article import PatientQueue, VanishingClient, VanishingWorker, listing_4_1, listing_4_2

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
METHODS = mp.get_all_start_methods()


def printed_listing(notebook: str) -> str:
    """The listing a chapter prints in its markdown, without its ``if __name__`` block."""
    cells = json.loads((NOTEBOOKS / notebook).read_text())["cells"]
    listings = ["".join(c["source"]).split("```python\n")[1].split("```")[0]
                for c in cells if c["cell_type"] == "markdown" and "```python" in "".join(c["source"])]
    assert len(listings) == 1, f"{notebook} prints {len(listings)} listings"
    return listings[0].split('\n\nif __name__ == "__main__":')[0].rstrip() + "\n"


def module_listing(module) -> str:
    """A module's source after its docstring."""
    source = inspect.getsource(module)
    return source.split('"""', 2)[2].lstrip("\n")


@pytest.mark.parametrize("notebook, module", [("04_distributed_learning.ipynb", listing_4_1),
                                              ("05_federated_learning.ipynb", listing_4_2)])
def test_each_module_holds_the_listing_its_chapter_prints(notebook, module):
    assert module_listing(module) == printed_listing(notebook)


def test_the_two_listings_differ_only_in_names():
    """The article's federated code is its distributed code renamed (chapter 05, defect 8)."""
    renamed = (module_listing(listing_4_2).replace("Client", "Worker").replace("clients", "workers")
               .replace("client", "worker"))
    assert renamed == module_listing(listing_4_1)


@pytest.fixture
def start_method(request):
    """Make ``request.param`` multiprocessing's start method for one test."""
    if request.param == "fork" and threading.active_count() > 1:
        pytest.skip("this process runs threads: forking it could deadlock the child")
    previous = mp.get_start_method(allow_none=True)
    mp.set_start_method(request.param, force=True)
    yield request.param
    mp.set_start_method(previous, force=True)
    for process in mp.active_children():
        process.join(timeout=30)


@pytest.mark.parametrize("start_method", METHODS, indirect=True)
@pytest.mark.parametrize("listing, args", [(listing_4_1, {"n_workers": 4}), (listing_4_2, {"n_clients": 4})])
def test_the_listing_runs_and_returns_zeros_under_every_start_method(listing, args, start_method, monkeypatch):
    monkeypatch.setattr(listing.Model, "get_params_shape", lambda self: self.params.shape, raising=False)
    server = listing.Server(listing.Model(), **args)
    server.data = [(np.zeros((5, 3)), np.zeros(5))] * 4  # the chapters' third attempt
    server.queue = PatientQueue(timeout=60)

    returned = server.run()

    assert np.array_equal(returned, np.zeros(10))


def test_as_printed_the_listing_fails_on_its_missing_method():
    with pytest.raises(AttributeError, match="get_params_shape"):
        listing_4_1.Server(listing_4_1.Model(), n_workers=4)


@pytest.mark.parametrize("start_method", METHODS, indirect=True)
@pytest.mark.parametrize("healthy, vanishing", [(listing_4_1.Worker, VanishingWorker),
                                                (listing_4_2.Client, VanishingClient)])
def test_a_vanishing_process_exits_with_code_1_and_never_replies(healthy, vanishing, start_method):
    replies = mp.Queue()
    shard = (np.zeros((5, 3)), np.zeros(5))
    processes = [healthy(listing_4_1.Model(), shard, replies), vanishing(listing_4_1.Model(), shard, replies)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)

    assert [p.exitcode for p in processes] == [0, 1]
    assert np.array_equal(replies.get(timeout=10), np.zeros(10))
    with pytest.raises(queue.Empty):
        replies.get(timeout=0.5)


def test_the_patient_queue_gives_up():
    with pytest.raises(queue.Empty):
        PatientQueue(timeout=0.1).get()


def test_the_package_exports_the_listings_and_the_chapters_helpers():
    assert article.__all__ == sorted(article.__all__)
    assert all(hasattr(article, name) for name in article.__all__)
