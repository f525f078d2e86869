/**
 * bench/vm-memory.ts reads the virtio devices' ids and negotiated features from sysfs; here it
 * reads fake sysfs trees shaped like the kernel's (a device's `device` id in hex, its `features`
 * as one '0'/'1' character per bit, bit 0 first).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { freePageReporting } from '../../bench/vm-memory.js';
import { tempDir } from './helpers.js';

/** A sysfs root with the given virtio devices. */
async function sysfs(devices: Record<string, { device: string; features: string }>): Promise<string> {
  const root = await tempDir('sysfs');
  for (const [name, d] of Object.entries(devices)) {
    const dir = join(root, 'bus', 'virtio', 'devices', name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'device'), `${d.device}\n`);
    await writeFile(join(dir, 'features'), `${d.features}\n`);
  }
  return root;
}

const bits = (...set: number[]): string => Array.from({ length: 64 }, (_, i) => (set.includes(i) ? '1' : '0')).join('');

describe('free page reporting of the benchmark machine', () => {
  it('is reported when the balloon negotiated VIRTIO_BALLOON_F_REPORTING (bit 5)', async () => {
    // Stats, deflate on OOM, reporting and version 1, as a Firecracker balloon offers them.
    const root = await sysfs({ virtio0: { device: '0x0005', features: bits(1, 2, 5, 32) }, virtio1: { device: '0x0002', features: bits(5, 32) } });

    expect(freePageReporting(root)).toBe(true);
  });

  it('is not reported for a balloon without it, or for bit 5 of another device', async () => {
    const root = await sysfs({ virtio0: { device: '0x0005', features: bits(1, 2, 3, 32) }, virtio1: { device: '0x0002', features: bits(5, 32) } });

    expect(freePageReporting(root)).toBe(false);
  });

  it('is unknown when a device cannot be read, unless the balloon said it reports', async () => {
    const root = await sysfs({ virtio0: { device: '0x0002', features: bits(32) } });
    await mkdir(join(root, 'bus', 'virtio', 'devices', 'virtio1')); // no device or features file
    expect(freePageReporting(root)).toBeNull();

    await mkdir(join(root, 'bus', 'virtio', 'devices', 'virtio2', 'x'), { recursive: true });
    await writeFile(join(root, 'bus', 'virtio', 'devices', 'virtio2', 'device'), '0x0005\n');
    await writeFile(join(root, 'bus', 'virtio', 'devices', 'virtio2', 'features'), `${bits(5)}\n`);
    expect(freePageReporting(root)).toBe(true);
  });

  it('is not reported where there is no virtio bus (a physical machine), and unknown without sysfs', async () => {
    const physical = await tempDir('no-virtio');
    await mkdir(join(physical, 'bus', 'pci'), { recursive: true });

    expect(freePageReporting(physical)).toBe(false);
    expect(freePageReporting(await tempDir('no-sysfs'))).toBeNull();
  });
});
