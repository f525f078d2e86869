/**
 * packsOfIndex reads a volume index for the packs it references (retention's sweep, DR
 * replication). A damaged index stops it with an error, and the object it opened must not
 * stay open behind it: on S3 that is a socket of the client's pool until garbage collection.
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import { IndexCorruptError } from '../../core/datamover/index-format.js';
import { packsOfIndex } from '../../core/vault/backup-index.js';
import { volumeIndexKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';

const HEADER = JSON.stringify({ format: 'milvus-guard/volume-index', version: 1, volume: 'v', backupId: 'b', chunker: 'x' });
const file = (name: string, pack: string): string =>
  JSON.stringify({ p: Buffer.from(name).toString('base64'), t: 'f', m: 420, u: 0, g: 0, mt: '1', s: 4, c: [['ab'.repeat(32), pack, 0, 4]] });

/** A vault whose index object arrives as `body` on a stream that has not ended (a large object still downloading). */
function vaultWith(body: Buffer): { vault: InMemoryVaultStore; opened: Readable[] } {
  const vault = new InMemoryVaultStore('memory://vault');
  const opened: Readable[] = [];
  vault.openRead = async () => {
    const stream = new Readable({ read() {} });
    stream.push(body);
    opened.push(stream);
    return stream;
  };
  return { vault, opened };
}

describe('packsOfIndex', () => {
  it('closes the index it opened when an entry is damaged', async () => {
    const { vault, opened } = vaultWith(gzipSync(`${HEADER}\n${file('a', 'p1')}\n{"p":\n${file('c', 'p2')}\n`));

    await expect(packsOfIndex(vault, 'b', 'v', new Set())).rejects.toThrow(IndexCorruptError);

    expect(opened).toHaveLength(1);
    expect(opened[0]!.destroyed).toBe(true);
  });

  it('reads the packs of an intact index', async () => {
    const vault = new InMemoryVaultStore('memory://vault');
    await vault.put(volumeIndexKey('b', 'v'), gzipSync(`${HEADER}\n${file('a', 'p1')}\n${file('b', 'p2')}\n${file('c', 'p1')}\n`));
    const packs = new Set<string>();

    await packsOfIndex(vault, 'b', 'v', packs);

    expect([...packs].sort()).toEqual(['p1', 'p2']);
  });
});
