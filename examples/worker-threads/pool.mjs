// A fixed pool of worker threads: run(message) posts to the next idle thread and resolves with
// its answer. Threads answer { result } or { error: { message, code } }.
import { Worker } from 'node:worker_threads';

export class Pool {
  #threads = [];
  #idle = [];
  #waiting = [];
  #tasks = new Map();

  constructor(size, url, workerData) {
    for (let i = 0; i < size; i += 1) {
      const worker = new Worker(url, { workerData });
      worker.on('message', ({ result, error }) => {
        const task = this.#take(worker);
        if (error) task.reject(Object.assign(new Error(error.message), { code: error.code }));
        else task.resolve(result);
      });
      // A thread that died is not given work again.
      worker.on('error', (err) => {
        this.#tasks.get(worker)?.reject(err);
        this.#tasks.delete(worker);
      });
      this.#threads.push(worker);
      this.#idle.push(worker);
    }
  }

  run(message) {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ message, resolve, reject });
      this.#dispatch();
    });
  }

  close() {
    return Promise.all(this.#threads.map((worker) => worker.terminate()));
  }

  #take(worker) {
    const task = this.#tasks.get(worker);
    this.#tasks.delete(worker);
    this.#idle.push(worker);
    this.#dispatch();
    return task;
  }

  #dispatch() {
    while (this.#idle.length > 0 && this.#waiting.length > 0) {
      const worker = this.#idle.shift();
      const task = this.#waiting.shift();
      this.#tasks.set(worker, task);
      worker.postMessage(task.message);
    }
  }
}
