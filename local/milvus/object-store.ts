/**
 * The MinIO drives of the simulated cluster, in MinIO's on-disk layout ("xl.meta" format):
 *
 *   <drive>/.minio.sys/format.json             deployment id, this drive's id, the erasure set
 *   <drive>/<bucket>/<object key>/xl.meta      object metadata; small objects' data inline
 *   <drive>/<bucket>/<object key>/<data dir>/part.1   object data when larger than 128 KiB
 *
 * Two simplifications, both cheap to lift later and documented here so nobody mistakes them
 * for MinIO's behaviour:
 * - No erasure coding. Each object lives on exactly one drive, chosen by SHA-256 of
 *   `<bucket>/<key>` modulo the number of drives (`EcM: 1, EcN: 0` in its xl.meta). Real
 *   MinIO with 4 drives stripes every object over all 4 with 2 parity shards; here losing a
 *   drive loses the objects placed on it, which is exactly what restore tests want to see.
 * - xl.meta is `"XL2 "` + version bytes 1.0.3.0 (as MinIO writes) followed by a uint32 LE
 *   length and a JSON document with MinIO's field names, instead of MessagePack, then the
 *   inline data.
 */
import { createHash } from 'node:crypto';
import { open, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectBucket } from './bucket.js';

const XL_MAGIC = Buffer.from('XL2 ', 'ascii');
const XL_VERSION = Buffer.from([1, 0, 3, 0]);
/** MinIO inlines object data in xl.meta up to this size (its small-file threshold). */
export const INLINE_THRESHOLD = 128 * 1024;
const NULL_VERSION_ID = '00000000-0000-0000-0000-000000000000';

interface XlMetaObject {
  ID: string;
  DDir: string;
  EcAlgo: number;
  EcM: number;
  EcN: number;
  EcBSize: number;
  EcIndex: number;
  EcDist: number[];
  CSumAlgo: number;
  PartNums: number[];
  PartETags: string[];
  PartSizes: number[];
  PartASizes: number[];
  Size: number;
  MTime: number;
  MetaSys: Record<string, string>;
  MetaUsr: Record<string, string>;
  Inline: boolean;
}

interface XlMeta {
  Versions: { Type: number; V2Obj: XlMetaObject }[];
}

/** A UUID-shaped id derived from `text`, so re-seeding reproduces the same directory names. */
function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function encodeXlMeta(meta: XlMeta, inline: Buffer | undefined): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  return Buffer.concat([XL_MAGIC, XL_VERSION, len, json, inline ?? Buffer.alloc(0)]);
}

function decodeXlMeta(file: Buffer): { meta: XlMeta; inline: Buffer } {
  if (file.length < 12 || !file.subarray(0, 4).equals(XL_MAGIC)) {
    throw new Error('not an xl.meta file (magic "XL2 " missing)');
  }
  const len = file.readUInt32LE(8);
  const meta = JSON.parse(file.toString('utf8', 12, 12 + len)) as XlMeta;
  return { meta, inline: file.subarray(12 + len) };
}

/** The bucket of one Milvus instance, spread over its MinIO drive directories. */
export class MinioDrives implements ObjectBucket {
  constructor(
    private readonly drives: readonly string[],
    private readonly bucket: string,
  ) {
    if (drives.length === 0) throw new Error('MinioDrives needs at least one drive directory');
  }

  /** The drive an object is placed on. */
  driveOf(key: string): string {
    const h = createHash('sha256').update(`${this.bucket}/${key}`).digest();
    return this.drives[h.readUInt32BE(0) % this.drives.length]!;
  }

  /** Writes `.minio.sys/format.json` on every drive and creates the bucket directory. */
  async format(deploymentId: string): Promise<string[]> {
    const driveIds = this.drives.map((_, i) => uuidFrom(`${deploymentId}/drive/${i}`));
    const written: string[] = [];
    for (const [i, drive] of this.drives.entries()) {
      await mkdir(join(drive, '.minio.sys'), { recursive: true });
      await mkdir(join(drive, this.bucket), { recursive: true });
      const format = {
        version: '1',
        format: 'xl',
        id: deploymentId,
        xl: { version: '3', this: driveIds[i], sets: [driveIds], distributionAlgo: 'SIPMOD+PARITY' },
      };
      const path = join(drive, '.minio.sys', 'format.json');
      await writeFile(path, JSON.stringify(format));
      written.push(path, join(drive, '.minio.sys'), join(drive, this.bucket));
    }
    return written;
  }

  /** `format`: a fresh MinIO formats its drives and creates the bucket. */
  initialize(deploymentId: string): Promise<string[]> {
    return this.format(deploymentId);
  }

  /** Whether every drive is formatted (holds `.minio.sys/format.json`). */
  async initialized(): Promise<boolean> {
    for (const drive of this.drives) {
      if (!(await stat(join(drive, '.minio.sys', 'format.json')).catch(() => undefined))) return false;
    }
    return true;
  }

  /** Stores an object; returns every path written (files and directories, deepest last). */
  async putObject(key: string, data: Buffer, mtime: Date): Promise<string[]> {
    const drive = this.driveOf(key);
    const objectDir = join(drive, this.bucket, key);
    const inline = data.length <= INLINE_THRESHOLD;
    const dataDir = uuidFrom(`${this.bucket}/${key}/data-dir`);
    const etag = createHash('md5').update(data).digest('hex');
    const meta: XlMeta = {
      Versions: [
        {
          Type: 1,
          V2Obj: {
            ID: NULL_VERSION_ID,
            DDir: dataDir,
            EcAlgo: 1,
            EcM: 1,
            EcN: 0,
            EcBSize: 1024 * 1024,
            EcIndex: 1,
            EcDist: [1],
            CSumAlgo: 1,
            PartNums: [1],
            PartETags: [etag],
            PartSizes: [data.length],
            PartASizes: [data.length],
            Size: data.length,
            MTime: mtime.getTime() * 1_000_000,
            MetaSys: {},
            MetaUsr: { etag, 'content-type': 'application/octet-stream' },
            Inline: inline,
          },
        },
      ],
    };
    await mkdir(objectDir, { recursive: true });
    const written = [objectDir];
    if (!inline) {
      await mkdir(join(objectDir, dataDir), { recursive: true });
      await writeFile(join(objectDir, dataDir, 'part.1'), data);
      written.push(join(objectDir, dataDir), join(objectDir, dataDir, 'part.1'));
    }
    await writeFile(join(objectDir, 'xl.meta'), encodeXlMeta(meta, inline ? data : undefined));
    written.push(join(objectDir, 'xl.meta'));
    return written;
  }

  /** Finds the drive holding an object: its placement drive first, then any other. */
  private async locate(key: string): Promise<{ dir: string; meta: XlMeta; inline: Buffer } | undefined> {
    const first = this.driveOf(key);
    for (const drive of [first, ...this.drives.filter((d) => d !== first)]) {
      const dir = join(drive, this.bucket, key);
      let file: Buffer;
      try {
        file = await readFile(join(dir, 'xl.meta'));
      } catch {
        continue;
      }
      return { dir, ...decodeXlMeta(file) };
    }
    return undefined;
  }

  /** The first `length` bytes of an object (all of it when shorter), or undefined if absent. */
  async readObjectHead(key: string, length: number): Promise<Buffer | undefined> {
    const found = await this.locate(key);
    if (!found) return undefined;
    const obj = found.meta.Versions[0]!.V2Obj;
    if (obj.Inline) return found.inline.subarray(0, length);
    let handle;
    try {
      handle = await open(join(found.dir, obj.DDir, 'part.1'), 'r');
    } catch {
      return undefined; // metadata without data: MinIO reports the object as missing too
    }
    try {
      const buf = Buffer.alloc(Math.min(length, obj.Size));
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  /** Whether an object exists. */
  async exists(key: string): Promise<boolean> {
    return (await this.locate(key)) !== undefined;
  }

  /** Keys of all objects under `prefix` (a directory-style prefix without trailing slash). */
  async listObjects(prefix: string): Promise<string[]> {
    const keys = new Set<string>();
    const walk = async (dir: string, key: string): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        return;
      }
      if (names.includes('xl.meta')) {
        keys.add(key);
        return;
      }
      for (const name of names) {
        const child = join(dir, name);
        if ((await stat(child)).isDirectory()) await walk(child, key ? `${key}/${name}` : name);
      }
    };
    for (const drive of this.drives) await walk(join(drive, this.bucket, prefix), prefix);
    return [...keys].sort();
  }
}
