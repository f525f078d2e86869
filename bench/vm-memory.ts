/**
 * Whether this machine is a virtual machine that hands the memory it frees back to its host
 * (virtio-balloon free page reporting), which the benchmarks say beside their numbers.
 *
 * Why it matters to a benchmark: a guest with free page reporting tells the host which of its
 * free pages it may take back, and the host does. When the guest next uses such a page, the
 * host has to fault memory back in under it first. Dropping the page cache before a restore
 * frees gigabytes at once, so the restore that follows writes its files into page-cache pages
 * that may each cost a host fault: on the machine the README's numbers come from, `dd` of
 * 1 GiB through the page cache took 0.20 s in five runs and 2.71 s in a sixth, the same
 * command. Writes through the page cache then vary from run to run by more than any change to
 * the code, and more for a tool that writes everything through it (restic) than for one that
 * writes large files with direct I/O (ours), whose buffers are reused.
 *
 * How it is read: each virtio device has a directory under /sys/bus/virtio/devices, whose
 * `device` file holds the device id (0x0005 is the balloon, VIRTIO_ID_BALLOON) and whose
 * `features` file holds the negotiated feature bits as '0'/'1' characters, bit 0 first
 * (drivers/virtio/virtio.c, features_show). Bit 5 is VIRTIO_BALLOON_F_REPORTING
 * (include/uapi/linux/virtio_balloon.h, "Page reporting virtqueue").
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const VIRTIO_ID_BALLOON = 5;
const VIRTIO_BALLOON_F_REPORTING = 5;

/** True when a virtio balloon device negotiated free page reporting; false when none did or sysfs cannot tell. */
export function freePageReporting(sysfs = '/sys'): boolean {
  const devices = join(sysfs, 'bus', 'virtio', 'devices');
  let names: string[];
  try {
    names = readdirSync(devices);
  } catch {
    return false; // not a virtio guest (or no sysfs): nothing to say
  }
  return names.some((name) => {
    try {
      const id = Number.parseInt(readFileSync(join(devices, name, 'device'), 'utf8').trim(), 16);
      const features = readFileSync(join(devices, name, 'features'), 'utf8').trim();
      return id === VIRTIO_ID_BALLOON && features[VIRTIO_BALLOON_F_REPORTING] === '1';
    } catch {
      return false;
    }
  });
}
