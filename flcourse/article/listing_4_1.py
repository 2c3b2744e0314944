"""The article's listing of section 4.1 (distributed learning), condensed: chapter 04 prints it.

The article's code, defects included (see :mod:`flcourse.article`). Not for use.
"""
import numpy as np
from multiprocessing import Process, Queue


class Model:
    def __init__(self):
        self.params = np.zeros(10)

    def fit(self, X, y):
        pass

    def get_params(self):
        return self.params


class Worker(Process):
    def __init__(self, model, data, queue):
        super().__init__()
        self.model = model
        self.data = data
        self.queue = queue

    def run(self):
        X, y = self.data
        self.model.fit(X, y)
        self.queue.put(self.model.get_params())


class Server:
    def __init__(self, model, n_workers):
        self.model = model
        self.n_workers = n_workers
        self.queue = Queue()
        self.params = np.zeros(self.model.get_params_shape())

    def run(self):
        workers = [Worker(self.model, self.data[i], self.queue) for i in range(self.n_workers)]
        for worker in workers:
            worker.start()
        for _ in range(self.n_workers):
            params = self.queue.get()
            self.params += params
        return self.params
