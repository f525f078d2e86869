/**
 * aws-local-stepfunctions calls `Promise.withResolvers`, which Node 20 lacks (Node 22 has it).
 * Importing this module installs the standard behaviour where it is missing; the local runner
 * and the test setup both import it, so there is one copy.
 */
if (!('withResolvers' in Promise)) {
  Object.defineProperty(Promise, 'withResolvers', {
    value<T>() {
      let resolve!: (v: T | PromiseLike<T>) => void;
      let reject!: (e?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

export {};
