/** The mount's file system without FUSE, over a fresh volume in a temporary lower directory. */
import { EcryptfsFs } from '../../src/mount/fs.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';

export interface FreshFs {
  lowerDir: string;
  vol: Volume;
  fs: EcryptfsFs;
  /** A second volume on the same lower directory, with its own ring (closing a volume wipes its ring's keys). */
  openOther: () => Promise<Volume>;
}

/** A fresh lower directory, a volume on it (filename encryption on) and the file system over it, for `body`. */
export async function withFreshFs(body: (t: FreshFs) => Promise<void>): Promise<void> {
  const dir = tempDir();
  try {
    const openOther = async () => {
      const ring = new KeyRing();
      const [k, f] = await ring.addPassphrase('fresh-fs-pass');
      return Volume.open(dir.path, ring, { sigs: [k.sig], fnekSig: f.sig });
    };
    const vol = await openOther();
    try {
      await body({ lowerDir: dir.path, vol, fs: new EcryptfsFs(vol), openOther });
    } finally {
      vol.close();
    }
  } finally {
    dir.cleanup();
  }
}
