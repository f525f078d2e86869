import { describe, expect, it } from '@jest/globals';
import { restoreInputFromFlags, type RestoreCreateOptions } from '../../cli/commands/restore.js';
import { UserError } from '../../core/errors.js';
import { RestoreInput } from '../../core/workflow/restore-state.js';

const flags = (storageClassMap: string): RestoreCreateOptions => ({ output: 'text', state: '.local-state', namespace: 'vector-db-dr', validateRowCounts: true, fromBackup: 'nightly-1', storageClassMap });

describe('StorageClass names in --storage-class-map', () => {
  it.each([
    ['a new name with an underscore', 'gp2=fast_ssd', 'fast_ssd'],
    ['a new name in capitals', 'gp2=GP3', 'GP3'],
    ['an old name that ends with a dash', 'gp2-=gp3', 'gp2-'],
    ['a name longer than 253 characters', `gp2=${'a'.repeat(254)}`, 'a'.repeat(254)],
  ])('refuses %s, naming the flag and the bad value', (_what, map, bad) => {
    const attempt = () => restoreInputFromFlags(flags(map));

    expect(attempt).toThrow(UserError);
    expect(attempt).toThrow(`restore create: --storage-class-map: ${JSON.stringify(bad)} is not a StorageClass name: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit`);
  });

  it('maps the volumes without a class with an empty old name, in the flag and in the workflow input', () => {
    expect(restoreInputFromFlags(flags('=gp3,gp2=gp3')).storageClassMap).toEqual({ '': 'gp3', gp2: 'gp3' });
    expect(RestoreInput.safeParse({ backupId: 'nightly-1', targetNamespace: 'dr', storageClassMap: { '': 'gp3' } }).success).toBe(true);
    expect(() => restoreInputFromFlags(flags('gp2='))).toThrow('--storage-class-map: "gp2=" is not old=new');
  });

  it('accepts DNS-1123 subdomain names, dots included', () => {
    expect(restoreInputFromFlags(flags('gp2=gp3,ebs.csi.aws.com-io1=io2-encrypted')).storageClassMap).toEqual({ gp2: 'gp3', 'ebs.csi.aws.com-io1': 'io2-encrypted' });
  });

  it('refuses a bad name in the workflow input too, with its place in the map', () => {
    const parsed = RestoreInput.safeParse({ backupId: 'nightly-1', targetNamespace: 'dr', storageClassMap: { 'Standard SSD': 'gp3' } });

    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['storageClassMap.Standard SSD', expect.stringMatching(/^"Standard SSD" is not a StorageClass name/)],
    ]);
  });
});
