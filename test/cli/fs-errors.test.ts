import { describe, expect, it } from '@jest/globals';
import { CommanderError } from 'commander';
import { reportFailure } from '../../cli/main.js';
import { UserError } from '../../core/errors.js';
import { IndexCorruptError } from '../../core/datamover/index-format.js';
import { VaultReadInterruptedError } from '../../core/vault/store.js';
import { asFileSystemError, FileSystemError, USER_FS_ERROR_CODES, withPath } from '../../core/fs-errors.js';

/** An error shaped like the ones Node's fs functions reject with. */
function errno(code: string, syscall: string, extra: { path?: string; dest?: string } = {}): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${syscall}${extra.path ? ` '${extra.path}'` : ''}`);
  err.code = code;
  err.syscall = syscall;
  if (extra.path !== undefined) err.path = extra.path;
  if (extra.dest !== undefined) (err as NodeJS.ErrnoException & { dest: string }).dest = extra.dest;
  return err;
}

describe('file-system errors a user can act on', () => {
  it.each(USER_FS_ERROR_CODES.map((code) => [code]))('turns %s into one line naming the path, the code and a fix', (code) => {
    const mapped = asFileSystemError(errno(code, 'open', { path: '/restore/target/file' }));

    expect(mapped).toBeInstanceOf(FileSystemError);
    expect(mapped).toBeInstanceOf(UserError);
    expect(mapped!.exitCode).toBe(1);
    expect(mapped!.message).toMatch(new RegExp(`^cannot open /restore/target/file: .+ \\(${code}\\); .+`));
    expect(mapped!.message).not.toContain('\n');
  });

  it.each([
    ['EACCES', 'permission denied'],
    ['EROFS', 'read-only'],
    ['ENOSPC', 'no space left'],
    ['EMFILE', 'ulimit -n'],
  ])('says what %s means in words (%s)', (code, words) => {
    expect(asFileSystemError(errno(code, 'open', { path: '/x' }))!.message).toContain(words);
  });

  it('names the file a write was for when Node gives no path (ENOSPC from write)', () => {
    const mapped = withPath(errno('ENOSPC', 'write'), '/restore/target/insert_log/1/2/3');

    expect(mapped).toBeInstanceOf(FileSystemError);
    expect((mapped as Error).message).toBe(
      'cannot write /restore/target/insert_log/1/2/3: no space left on the device (ENOSPC); free space on that file system or use a bigger one, then run again (a restore resumes where it stopped)',
    );
  });

  it("keeps the path Node gave rather than the write site's", () => {
    const mapped = withPath(errno('EACCES', 'open', { path: '/vault/data/packs/ab/x.tmp-1' }), '/vault/data/packs/ab/x');

    expect((mapped as FileSystemError).path).toBe('/vault/data/packs/ab/x.tmp-1');
  });

  it('names the destination of a copy when the disk it writes to is full', () => {
    const mapped = asFileSystemError(errno('ENOSPC', 'copyfile', { path: '/tmp/index.jsonl.gz', dest: '/vault/backups/b1/index.tmp-1' }));

    expect(mapped!.message).toMatch(/^cannot copy to \/vault\/backups\/b1\/index\.tmp-1: no space left/);
  });

  it('says a directory was expected when mkdir meets a file', () => {
    expect(asFileSystemError(errno('EEXIST', 'mkdir', { path: '/tmp/target' }))!.message).toBe(
      'cannot create directory /tmp/target: it exists and is not a directory (EEXIST); give a directory, or move the file out of the way',
    );
  });

  it('quotes a path holding a newline so the message stays one line', () => {
    expect(asFileSystemError(errno('EISDIR', 'open', { path: '/t/new\nline' }))!.message).toMatch(/^cannot open "\/t\/new\\nline": /);
  });

  it('finds the file-system error in the cause of a wrapping error', () => {
    const wrapped = new Error('restore failed', { cause: errno('EROFS', 'open', { path: '/mnt/ro/f' }) });

    expect(asFileSystemError(wrapped)?.path).toBe('/mnt/ro/f');
  });

  it.each([
    ['ENOENT', errno('ENOENT', 'open', { path: '/x' })],
    ['EIO', errno('EIO', 'read', { path: '/x' })],
    ['a plain Error', new Error('bug')],
    ['a string', 'boom'],
  ])('leaves %s alone: it is not the user\'s to fix', (_what, err) => {
    expect(asFileSystemError(err)).toBeUndefined();
    expect(withPath(err, '/x')).toBe(err);
  });
});

describe('what the CLI prints when a command fails', () => {
  const report = (err: unknown): { code: number; text: string } => {
    let text = '';
    const code = reportFailure(err, (t) => void (text += t));
    return { code, text };
  };

  it('prints a file-system error the user can fix as one line, exit 1', () => {
    expect(report(errno('EROFS', 'open', { path: '/mnt/snapshot/x' }))).toEqual({
      code: 1,
      text: 'error: cannot open /mnt/snapshot/x: the file system is read-only (EROFS); choose a directory on a writable file system, or mount it read-write\n',
    });
  });

  it('prints a vault download cut short every time, and a damaged vault object, as one line, exit 1: the vault, not a bug', () => {
    const cut = new VaultReadInterruptedError('s3://vault/', 'packs/ab/ab.pack', Object.assign(new Error('aborted'), { code: 'ECONNRESET' }), 3);

    expect(report(cut)).toEqual({ code: 1, text: 'error: object packs/ab/ab.pack in vault s3://vault/ could not be read: its download was cut short 3 times (aborted); try again\n' });
    expect(report(new IndexCorruptError('index of backup b volume v', 'entries are out of order'))).toEqual({ code: 1, text: 'error: index of backup b volume v: entries are out of order; the index is damaged, restore from another backup\n' });
  });

  it('prints a UserError as one line with its exit code', () => {
    expect(report(new UserError('--volume: "a/b" is not a volume name'))).toEqual({ code: 1, text: 'error: --volume: "a/b" is not a volume name\n' });
  });

  it('prints anything else with its stack, says it is a bug, exit 2', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'indexKey')");

    const { code, text } = report(bug);

    expect(code).toBe(2);
    expect(text).toMatch(/^internal error: TypeError: Cannot read properties of undefined \(reading 'indexKey'\)\n\s+at /);
    expect(text.endsWith('This is a bug in milvus-guard: please report it with the lines above.\n')).toBe(true);
  });

  it('leaves a usage error to commander, which printed it already', () => {
    expect(report(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--foo'"))).toEqual({ code: 1, text: '' });
  });
});
