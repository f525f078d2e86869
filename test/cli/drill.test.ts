import { replicaBucketName } from '../../core/naming.js';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { drillInputFromFlags, registerDrillCommands, renderDrillEvidence, renderDrillList } from '../../cli/commands/drill.js';
import { DrillEvidence } from '../../core/drill/workflow.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { drillEvidenceKey } from '../../core/vault/layout.js';
import { backupRecord, CONFIG, cliWith, localState, mockAwsStart, PLAN } from './helpers.js';

const cli = () => cliWith(registerDrillCommands);
const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-drill:abc';
const { sfn, ddb } = mockAwsStart(EXECUTION);

/** The evidence of a passed drill of the example plan; `over` changes fields. */
function evidence(over: Partial<DrillEvidence> = {}): DrillEvidence {
  return DrillEvidence.parse({
    format: 'milvus-guard/drill-evidence-v1',
    drillId: 'production-weekly-drill-drill-20261129060000',
    drill: 'production-weekly-drill',
    plan: PLAN,
    executionId: 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-drill:d1',
    startedAt: '2026-11-29T06:00:00.000Z',
    completedAt: '2026-11-29T06:03:00.000Z',
    passed: true,
    backup: { backupId: 'nightly-7', completedAt: '2026-11-29T02:03:00.000Z', ageSeconds: 14_220 },
    achievedRpoSeconds: 14_220,
    achievedRtoSeconds: 150,
    restore: { restoreId: 'production-weekly-drill-drill-20261129060000', status: 'Completed', source: 'vault', targetCluster: 'prod', targetNamespace: 'vector-db-drill' },
    collections: [
      { name: 'default.product_embeddings', expected: 19726, restored: 19726, searchHits: 3, ok: true },
      { name: 'analytics.session_vectors', expected: 24803, restored: 24803, searchHits: 3, ok: true },
    ],
    cleanup: { requested: true, namespaceDeleted: true },
    ...over,
  });
}

const failedEvidence = (): DrillEvidence =>
  evidence({
    drillId: 'milvus-production-backup-drill-20261130060000',
    drill: undefined,
    startedAt: '2026-11-30T06:00:00.000Z',
    completedAt: '2026-11-30T06:01:00.000Z',
    passed: false,
    achievedRtoSeconds: undefined,
    restore: { restoreId: 'milvus-production-backup-drill-20261130060000', status: 'Failed', source: 'vault', targetCluster: 'prod', targetNamespace: 'vector-db-drill', failedStep: 'Volumes', error: 'HydrationFailed', cause: 'pack data/packs/ab/abc.pack is damaged' },
    collections: [],
  });

describe('drill run flags', () => {
  it('refuses --plan together with --drill', () => {
    expect(() => drillInputFromFlags({ plan: PLAN, drill: 'production-weekly-drill' })).toThrow(/--plan and --drill exclude each other/);
  });

  it('asks for a drill or a plan when neither is given', () => {
    expect(() => drillInputFromFlags({})).toThrow(/--drill NAME .* or --plan NAME/);
  });

  it('passes a configured drill as the drill input', () => {
    expect(drillInputFromFlags({ drill: 'production-weekly-drill' })).toEqual({ drill: 'production-weekly-drill' });
  });
});

describe('drill run checks the config and the catalog before starting', () => {
  it('refuses a drill the config does not define', async () => {
    const { dir } = await localState();

    await expect(cli().run('drill', 'run', '--drill', 'nope', '--local', '--state', dir)).rejects.toThrow(/drill "nope" is not defined/);
  });

  it('refuses a plan without an Available backup, saying how to make one', async () => {
    const { dir, catalog } = await localState();
    await catalog.createBackup(backupRecord({ status: 'InProgress', completedAt: undefined }));

    await expect(cli().run('drill', 'run', '--plan', PLAN, '--local', '--state', dir)).rejects.toThrow(
      `plan ${PLAN} has no Available backup to drill; run a backup first (milvus-guard backup create --plan ${PLAN})`,
    );
  });
});

describe('drill run on AWS', () => {
  it("starts the installation's drill state machine in the plan's vault region with the drill as input", async () => {
    ddb.on(QueryCommand).resolves({ Items: [backupRecord()] });
    const c = cli();

    const code = await c.run('drill', 'run', '--drill', 'production-weekly-drill', '-c', CONFIG);

    expect(code).toBe(0);
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({
      stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-drill',
      input: '{"drill":"production-weekly-drill"}',
    });
    expect(c.out.join('')).toBe(`started ${EXECUTION}\n`);
  });

  it('starts nothing for a drill the config does not define', async () => {
    await expect(cli().run('drill', 'run', '--drill', 'nope', '-c', CONFIG)).rejects.toThrow(/drill "nope" is not defined/);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });
});

describe('drill list', () => {
  it('shows drill id, plan, backup, RPO, RTO, collections ok/total, passed and when', () => {
    expect(renderDrillList([failedEvidence(), evidence()])).toBe(
      'DRILL                                           PLAN                       BACKUP      RPO     RTO     COLLECTIONS OK   PASSED   WHEN\n' +
        'milvus-production-backup-drill-20261130060000   milvus-production-backup   nightly-7   3h57m           0/0              NO       2026-11-30T06:00:00.000Z\n' +
        'production-weekly-drill-drill-20261129060000    milvus-production-backup   nightly-7   3h57m   2m30s   2/2              yes      2026-11-29T06:00:00.000Z\n',
    );
  });

  it("reads the evidence from the local state directory's vault, newest first", async () => {
    const { dir } = await localState();
    const vault = new FileVaultStore(join(dir, 'vault'));
    await vault.put(drillEvidenceKey(PLAN, evidence().drillId), Buffer.from(JSON.stringify(evidence())));
    await vault.put(drillEvidenceKey(PLAN, failedEvidence().drillId), Buffer.from(JSON.stringify(failedEvidence())));
    const c = cli();

    const code = await c.run('drill', 'list', '--local', '--state', dir, '-o', 'json');

    expect(code).toBe(0);
    expect(JSON.parse(c.out.join(''))).toEqual([failedEvidence(), evidence()]);
  });

  describe('on AWS', () => {
    const s3 = mockClient(S3Client);
    beforeEach(() => {
      s3.reset();
    });

    it("reads the plan's evidence from its vault bucket, named by installation, vault, account and region", async () => {
      const key = drillEvidenceKey(PLAN, evidence().drillId);
      s3.on(ListObjectsV2Command).resolves({ Contents: [] }).on(ListObjectsV2Command, { Bucket: 'milvus-guard-primary-123456789012-us-east-1' }).resolves({ Contents: [{ Key: key, Size: 10 }] });
      s3.on(GetObjectCommand).resolves({ Body: { transformToByteArray: async () => new Uint8Array(Buffer.from(JSON.stringify(evidence()))) } as never });
      const c = cli();

      const code = await c.run('drill', 'list', '--plan', PLAN, '-c', CONFIG);

      expect(code).toBe(0);
      // The vault's bucket, and its replica in the DR region, where drills run there write theirs.
      expect(s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)).toEqual([
        expect.objectContaining({ Bucket: 'milvus-guard-primary-123456789012-us-east-1', Prefix: `drills/${PLAN}/` }),
        expect.objectContaining({ Bucket: replicaBucketName({ installation: 'milvus-guard', vault: 'primary', account: '123456789012', region: 'us-west-2' }), Prefix: `drills/${PLAN}/` }),
      ]);
      expect(c.out.join('')).toMatch(/production-weekly-drill-drill-20261129060000\s+milvus-production-backup\s+nightly-7\s+3h57m\s+2m30s\s+2\/2\s+yes/);
    });
  });
});

describe('drill evidence in full', () => {
  it('shows the restore failure of a failed drill', () => {
    const text = renderDrillEvidence(failedEvidence());

    expect(text).toMatch(/Passed:\s+NO\n/);
    expect(text).toContain('Restore failed in Volumes: HydrationFailed\n  pack data/packs/ab/abc.pack is damaged\n');
  });

  it('shows RPO, RTO, cleanup and the collections of a passed drill', () => {
    const text = renderDrillEvidence(evidence());

    expect(text).toMatch(/RPO:\s+3h57m/);
    expect(text).toMatch(/RTO:\s+2m30s/);
    expect(text).toMatch(/Cleanup:\s+namespace deleted/);
    expect(text).toMatch(/default\.product_embeddings\s+19726\s+19726\s+3\s+yes/);
  });
});

describe('the drill of a backup whose collections were dropped while it ran', () => {
  const dropped = (): DrillEvidence =>
    evidence({
      collections: [
        { name: 'default.product_embeddings', expected: 19726, restored: 19726, searchHits: 3, ok: true },
        { name: 'default.old_embeddings', expected: 500, ok: true, droppedDuringBackup: true },
        { name: 'default.swapped', expected: 300, ok: true, droppedDuringBackup: true, recreatedDuringBackup: true },
      ],
    });

  it('says why each was not counted', () => {
    const text = renderDrillEvidence(dropped());

    expect(text).toMatch(/default\.old_embeddings\s+500\s+yes\s+dropped during the backup: not restored\n/);
    expect(text).toMatch(/default\.swapped\s+300\s+yes\s+dropped and created again during the backup: not the collection backed up, not counted\n/);
  });

  it('counts only the collections checked in drill list', () => {
    expect(renderDrillList([dropped()])).toMatch(/\s1\/1\s/);
  });
});
