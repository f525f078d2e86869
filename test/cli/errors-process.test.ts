import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { FileVaultStore } from '../../core/vault/file-store.js';

interface Exit {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

// Tests run as root here, for whom a directory's mode denies nothing: the permission tests
// run the CLI as nobody (uid 65534), where a 0555 directory is really read-only.
const UNPRIVILEGED = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

/** Runs the real `milvus-guard` entry point in a child process. */
function cli(...args: string[]): Promise<Exit> {
  return cliWith({}, ...args);
}

function cliWith(options: { uid?: number; gid?: number }, ...args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/milvus-guard.js', ...args], { timeout: 30_000, ...options }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const NO_STACK = /\n\s+at |internal error/;

let dir: string;
let vaultUrl: string;
/** A regular file, where the commands below expect a directory. */
let file: string;
/** An empty directory with mode 0555. */
let readOnly: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-errors-'));
  const source = join(dir, 'source');
  await mkdir(source);
  await writeFile(join(source, 'segment'), 'rows');
  file = join(dir, 'a-file');
  await writeFile(file, 'not a directory');
  const vault = new FileVaultStore(join(dir, 'vault'));
  vaultUrl = vault.url;
  await backupVolume({ source, vault, volume: 'etcd', backupId: 'b1', now: new Date('2026-03-01T02:00:00Z'), workers: 1 });
  await chmod(dir, 0o755); // mkdtemp makes it 0700: the unprivileged runs read the vault in it
  readOnly = join(dir, 'read-only');
  await mkdir(readOnly, { mode: 0o555 });
  await chmod(readOnly, 0o555);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('file-system errors of the data mover (as a process)', () => {
  it('refuses a restore target that is a file in one line naming it, exit 1', async () => {
    const r = await cli('datamover', 'restore', '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--target', file);

    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: cannot create directory ${file}: it exists and is not a directory (EEXIST); give a directory, or move the file out of the way\n`);
  });

  it('refuses a restore target below a file in one line naming it, exit 1', async () => {
    const r = await cli('datamover', 'restore', '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--target', join(file, 'sub'));

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error: cannot create directory ${file}/sub: a part of the path is not a directory \\(ENOTDIR\\); .+\n$`));
  });

  it('refuses a file:// vault below a file in one line naming the path, exit 1', async () => {
    const r = await cli('datamover', 'backup', '--source', join(dir, 'source'), '--vault', `file://${file}/vault`, '--volume', 'etcd', '--backup-id', 'b2');

    expect(r.code).toBe(1);
    // The first touch of the vault is a lookup (a retried Job looks for what its last attempt wrote) or a mkdir.
    expect(r.stderr).toMatch(new RegExp(`^error: cannot (stat|create directory) ${file}/vault/\\S+: a part of the path is not a directory \\(ENOTDIR\\)`));
    expect(r.stderr).not.toMatch(NO_STACK);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('other errors of the restore target (as a process)', () => {
  it('names the file a restore could not write past the file-size limit (EFBIG), in one line, exit 1, and keeps the marker', async () => {
    // A real EFBIG from the kernel: the restore runs under a 64 KiB file-size limit (RLIMIT_FSIZE;
    // Node ignores SIGXFSZ, so the write fails instead of killing it), and the file is 256 KiB.
    const source = join(dir, 'big-source');
    await mkdir(join(source, 'insert_log'), { recursive: true });
    await writeFile(join(source, 'insert_log', 'segment'), Buffer.alloc(256 * 1024, 7));
    const vault = new FileVaultStore(join(dir, 'big-vault'));
    await backupVolume({ source, vault, volume: 'minio', backupId: 'b1', now: new Date('2026-03-01T02:00:00Z'), workers: 1 });
    const target = join(dir, 'big-target');

    const r = await new Promise<Exit>((resolve) => {
      const args = ['bin/milvus-guard.js', 'datamover', 'restore', '--vault', vault.url, '--volume', 'minio', '--backup-id', 'b1', '--target', target];
      execFile('bash', ['-c', 'ulimit -f 64 && exec "$@"', 'bash', process.execPath, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });

    expect(r.stderr).toMatch(/^error: cannot restore insert_log\/segment: EFBIG: file too large, write; check the target volume, then run the restore again \(it resumes where this one stopped\)\n$/);
    expect(r.code).toBe(1);
    expect(await readdir(target)).toContain('.milvus-guard-restore.json');
  });
});

describe('permission errors of the data mover (as a process, unprivileged)', () => {
  it('refuses a read-only restore target in one line naming the file it could not create, exit 1', async () => {
    const r = await cliWith(UNPRIVILEGED, 'datamover', 'restore', '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--target', readOnly);

    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: cannot open ${readOnly}/.milvus-guard-restore.json: permission denied (EACCES); give the user running milvus-guard access to it, or choose another path\n`,
    );
  });

  it('refuses a file:// vault in a read-only directory in one line naming it, exit 1', async () => {
    const r = await cliWith(UNPRIVILEGED, 'datamover', 'backup', '--source', join(dir, 'source'), '--vault', `file://${readOnly}/vault`, '--volume', 'etcd', '--backup-id', 'b2');

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error: cannot create directory ${readOnly}/vault\\S*: permission denied \\(EACCES\\); .+\n$`));
  });
});

describe('usage errors (as a process)', () => {
  it('prints one line naming the command and its --help, exit 1', async () => {
    const r = await cli('restore', 'create', '--namespace', 'restored', '--sourc', 'vault');

    expect(r.code).toBe(1);
    expect(r.stderr).toBe("milvus-guard restore create: unknown option '--sourc'; did you mean --source? (see milvus-guard restore create --help)\n");
  });

  it('prints one line for a missing required option', async () => {
    const r = await cli('datamover', 'backup', '--vault', vaultUrl);

    expect(r.code).toBe(1);
    expect(r.stderr).toBe("milvus-guard datamover backup: required option '--source <dir>' not specified (see milvus-guard datamover backup --help)\n");
  });

  it('prints one line for an unknown verb', async () => {
    const r = await cli('restor');

    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^milvus-guard: unknown command 'restor'.* \(see milvus-guard --help\)\n$/);
  });
});
