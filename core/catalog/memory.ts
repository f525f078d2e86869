/**
 * `InMemoryCatalog`: the documented test double of the catalog port. Documents live in a map
 * (deep-copied in and out, so a test cannot change a record behind the catalog's back).
 */
import { DocumentCatalog } from './document-catalog.js';

export class InMemoryCatalog extends DocumentCatalog {
  private readonly documents = new Map<string, string>();
  private queue: Promise<unknown> = Promise.resolve();

  protected async load(key: string): Promise<unknown> {
    const text = this.documents.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  protected async save(key: string, value: unknown): Promise<void> {
    if (value === undefined) this.documents.delete(key);
    else this.documents.set(key, JSON.stringify(value));
  }

  protected async keys(prefix: string): Promise<string[]> {
    return [...this.documents.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  protected exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
