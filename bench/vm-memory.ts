/**
 * Whether this machine is a virtual machine that hands the memory it frees back to its host
 * (virtio-balloon free page reporting), which the benchmarks say beside their numbers.
 *
 * Why it matters to a benchmark: a guest with free page reporting tells the host which of its
 * free pages it may take back, and the host does. When the guest next uses such a page, the
 * host has to fault memory back in under it first. Dropping the page cache before a restore
 * frees gigabytes at once, so the restore that follows writes its files into page-cache pages
 * that may each cost a host fault. On the machine the README's numbers come from, `dd` of
 * 1 GiB through the page cache, each time 3 s after dropping the caches, took 1.28-1.66 s in 8
 * runs, and 0.20-0.21 s in 8 runs interleaved with them with reporting turned off (its
 * /sys/module/page_reporting/parameters/page_reporting_order raised above the largest order).
 * Restores of the default profile the same way, 2 runs each: restic 11.7-13.2 s with reporting
 * and 6.5-7.0 s without; ours 3.07-3.26 s both ways (it writes files of 1 MiB and more with
 * direct I/O, from buffers it reuses). The small-files profile's restores did not change
 * measurably either way.
 *
 * How it is read: each virtio device has a directory under /sys/bus/virtio/devices, whose
 * `device` file holds the device id (0x0005 is the balloon, VIRTIO_ID_BALLOON) and whose
 * `features` file holds the negotiated feature bits as '0'/'1' characters, bit 0 first
 * (drivers/virtio/virtio.c, features_show). Bit 5 is VIRTIO_BALLOON_F_REPORTING
 * (include/uapi/linux/virtio_balloon.h, "Page reporting virtqueue").
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const VIRTIO_ID_BALLOON = 5;
const VIRTIO_BALLOON_F_REPORTING = 5;

/**
 * True when a virtio balloon device negotiated free page reporting, false when none did (or the
 * machine has no virtio bus), null when sysfs cannot tell (not mounted, not Linux).
 */
export function freePageReporting(sysfs = '/sys'): boolean | null {
  const devices = join(sysfs, 'bus', 'virtio', 'devices');
  let names: string[];
  try {
    names = readdirSync(devices);
  } catch (err) {
    // No virtio bus on a mounted sysfs: not a virtio guest. Anything else: cannot tell.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(join(sysfs, 'bus')) ? false : null;
  }
  let unknown = false;
  for (const name of names) {
    try {
      if (Number.parseInt(readFileSync(join(devices, name, 'device'), 'utf8').trim(), 16) !== VIRTIO_ID_BALLOON) continue;
      if (readFileSync(join(devices, name, 'features'), 'utf8').trim()[VIRTIO_BALLOON_F_REPORTING] === '1') return true;
    } catch {
      unknown = true; // a device whose files cannot be read may be the balloon
    }
  }
  return unknown ? null : false;
}
