/**
 * Typed client-node calls with the project's error names. client-node throws `ApiException`
 * with the HTTP status in `code`; the workflows retry by error *name*, so every Kubernetes call
 * of a workflow step goes through `kubeCall`, which names its errors as errors.ts says. The
 * name (`create VolumeSnapshot vector-db/x`) also reaches the request layer, so a request past
 * its deadline (deadline.ts, set by `makeKubeClients`) fails naming the call and the object.
 */
import { namingCalls } from './deadline.js';
import { statusOf, translateKubeError } from './errors.js';

/** Runs one client-node call, translating its errors (see the module documentation). */
export async function kubeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await namingCalls(what, call);
  } catch (err) {
    throw translateKubeError(what, err);
  }
}

/** Like `kubeCall`, but resolves to undefined when the object does not exist (404). */
export async function kubeGetOptional<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await namingCalls(what, call);
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw translateKubeError(what, err);
  }
}

/** Like `kubeCall` for a create: an object that already exists (409) is not an error (a retried step). */
export async function kubeCreateIdempotent<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await namingCalls(what, call);
  } catch (err) {
    if (statusOf(err) === 409) return undefined;
    throw translateKubeError(what, err);
  }
}

/** Like `kubeCall` for a delete: an object already gone (404) is not an error. */
export async function kubeDeleteIdempotent(what: string, call: () => Promise<unknown>): Promise<boolean> {
  try {
    await namingCalls(what, call);
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw translateKubeError(what, err);
  }
}
