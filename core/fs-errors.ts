/**
 * File-system errors a user can act on (a read-only target, a full disk, a path that is a
 * file), turned into one line that names the path and what to do. The CLI's top level maps
 * whatever reaches it through {@link asFileSystemError}; code that writes through a file
 * handle (where Node's error carries no path, as for ENOSPC from `write`) passes the path it
 * was writing with {@link withPath}, so the message can still name the file.
 */
import { open } from 'node:fs/promises';
import { UserError } from './errors.js';

/** What each errno means to the user and what to do about it. */
const MEANINGS: Record<string, { readonly what: string; readonly fix: string }> = {
  EACCES: { what: 'permission denied', fix: 'give the user running milvus-guard access to it, or choose another path' },
  EPERM: { what: 'operation not permitted', fix: 'give the user running milvus-guard access to it (ownership and mode), or choose another path' },
  EROFS: { what: 'the file system is read-only', fix: 'choose a directory on a writable file system, or mount it read-write' },
  ENOSPC: { what: 'no space left on the device', fix: 'free space on that file system or use a bigger one, then run again (a restore resumes where it stopped)' },
  EDQUOT: { what: 'disk quota exceeded', fix: 'raise the quota or free space on that file system, then run again' },
  EEXIST: { what: 'it already exists', fix: 'remove it or choose another path' },
  ENOTDIR: { what: 'a part of the path is not a directory', fix: 'check the path: a file is where a directory is expected' },
  EISDIR: { what: 'it is a directory', fix: 'give the path of a file, or remove the directory' },
  EMFILE: { what: 'too many open files in this process', fix: 'raise the open-file limit (ulimit -n) or lower --concurrency' },
  ENFILE: { what: 'too many open files on this system', fix: 'raise the system open-file limit (fs.file-max) or lower --concurrency' },
};

/** Where one system call gives a code a narrower meaning. */
const BY_SYSCALL: Record<string, { readonly what: string; readonly fix: string }> = {
  'EEXIST:mkdir': { what: 'it exists and is not a directory', fix: 'give a directory, or move the file out of the way' },
};

/** The codes mapped here: anything else (ENOENT from our own files, EIO) stays as it was. */
export const USER_FS_ERROR_CODES: readonly string[] = Object.keys(MEANINGS);

// Where a full disk or a read-only file system shows, the written side of a copy is at fault.
const WRITE_SIDE = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

const VERBS: Record<string, string> = {
  open: 'open',
  write: 'write',
  read: 'read',
  mkdir: 'create directory',
  rmdir: 'remove directory',
  unlink: 'remove',
  rm: 'remove',
  rename: 'rename',
  copyfile: 'copy to',
  symlink: 'create symlink',
  link: 'create link',
  chmod: 'set the mode of',
  chown: 'set the owner of',
  lchown: 'set the owner of',
  utime: 'set the times of',
  lutime: 'set the times of',
  fsync: 'flush',
  ftruncate: 'truncate',
  scandir: 'list',
};

/** A file-system error the user can fix: printed as one line, without a stack (exit 1). */
export class FileSystemError extends UserError {
  /** The errno code, e.g. `ENOSPC`. */
  readonly code: string;
  /** The path at fault, as far as it is known. */
  readonly path: string | undefined;

  constructor(code: string, path: string | undefined, syscall: string | undefined, cause: unknown) {
    const meaning = BY_SYSCALL[`${code}:${syscall}`] ?? MEANINGS[code]!;
    const verb = syscall === undefined ? 'write' : (VERBS[syscall] ?? syscall);
    const where = path === undefined ? `cannot ${verb}` : `cannot ${verb} ${printable(path)}`;
    super(`${where}: ${meaning.what} (${code}); ${meaning.fix}`, { cause });
    this.name = 'FileSystemError';
    this.code = code;
    this.path = path;
  }
}

interface ErrnoLike {
  readonly code?: unknown;
  readonly path?: unknown;
  readonly dest?: unknown;
  readonly syscall?: unknown;
}

function pathText(p: unknown): string | undefined {
  if (typeof p === 'string') return p;
  if (Buffer.isBuffer(p)) return p.toString('utf8');
  return undefined;
}

// A file name may hold a newline or other control characters: quote it then, so the
// message stays one line.
function printable(path: string): string {
  return /[\x00-\x1f\x7f]/.test(path) ? JSON.stringify(path) : path;
}

/**
 * `err` as a {@link FileSystemError} when it is a Node file-system error with one of the
 * codes a user can act on (searching its `cause` chain too); otherwise undefined. `fallbackPath`
 * names the file when the error carries none (a `write` or `fsync` on a file handle).
 */
export function asFileSystemError(err: unknown, fallbackPath?: string | Buffer): FileSystemError | undefined {
  // Duck-typed, not `instanceof Error`: Node's errors may come from another realm (a vm context).
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof FileSystemError) return e;
    const { code, path, dest, syscall } = e as ErrnoLike;
    if (typeof code !== 'string' || !(code in MEANINGS)) continue;
    const destPath = pathText(dest);
    const at = (WRITE_SIDE.has(code) && destPath !== undefined ? destPath : pathText(path)) ?? pathText(fallbackPath);
    return new FileSystemError(code, at, typeof syscall === 'string' ? syscall : undefined, e);
  }
  return undefined;
}

/**
 * For write sites: `err` as a {@link FileSystemError} naming `path` when Node's error does not
 * name one; any other error unchanged. Use as `catch (err) { throw withPath(err, file) }`.
 */
export function withPath(err: unknown, path: string | Buffer): unknown {
  return asFileSystemError(err, path) ?? err;
}

/**
 * fsync of the file or directory at `path` (a rename is durable only once its directory is).
 * A full disk can surface only here (delayed allocation), and Node's error names no file: the
 * error says which path.
 */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch (err) {
    throw withPath(err, path);
  } finally {
    await fh.close();
  }
}
